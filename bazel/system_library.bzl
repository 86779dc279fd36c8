"""Repository rule that exposes a library installed from Debian's packages.

A `system_library` repository symlinks the library's headers from
/usr/include, asks pkg-config for its link flags, and writes one `cc_library`
per target, so packages depend on `@absl//:strings` or `@googletest//:gtest`
by label and never carry `linkopts` of their own. Nothing is downloaded.

When a header or pkg-config module is missing the rule fails with the Debian
package to install; `./tools/bazel` installs all of them on first use.

Installed packages are read when the repository is first made. After a system
upgrade that changes them, `bazel sync --configure` or `bazel clean --expunge`
makes the repositories again.
"""

_INCLUDE_ROOT = "/usr/include/"

def _missing(rctx, what):
    fail(("troupe: %s is missing, so @%s cannot be set up.\n" +
          "Install the Debian package(s): apt-get install %s\n" +
          "(./tools/bazel installs every dependency on first use.)") %
         (what, rctx.name, " ".join(rctx.attr.packages)))

def _run(rctx, argv, what):
    result = rctx.execute(argv)
    if result.return_code != 0:
        _missing(rctx, what + " (" + result.stderr.strip() + ")")
    return result.stdout

def _words(text):
    return [w for w in text.replace("\n", " ").replace("\t", " ").split(" ") if w]

def _pkg_config(rctx, flag, module):
    tool = rctx.which("pkg-config")
    if tool == None:
        fail("troupe: pkg-config is missing; install the Debian package pkgconf.")
    return _words(_run(rctx, [tool, flag, module], "pkg-config module " + module))

def _starlark_list(items):
    return "[" + ", ".join(['"%s"' % i for i in items]) + "]"

def _cc_library(name, linkopts, defines):
    return """
cc_library(
    name = "{name}",
    hdrs = _HDRS,
    includes = ["include"],
    defines = {defines},
    linkopts = {linkopts},
)
""".format(name = name, linkopts = _starlark_list(linkopts), defines = _starlark_list(defines))

def _system_library_impl(rctx):
    for header in rctx.attr.headers:
        source = rctx.path(_INCLUDE_ROOT + header)
        if not source.exists:
            _missing(rctx, _INCLUDE_ROOT + header)
        rctx.symlink(source, "include/" + header)

    libraries = dict(rctx.attr.pkg_config)
    if rctx.attr.pkg_config_prefix:
        prefix = rctx.attr.pkg_config_prefix
        listing = _run(rctx, [rctx.which("pkg-config") or "pkg-config", "--list-all"], "pkg-config")
        for line in listing.splitlines():
            module = line.split(" ")[0]
            if module.startswith(prefix):
                libraries[module[len(prefix):]] = module
        if not libraries:
            _missing(rctx, "pkg-config modules " + prefix + "*")

    build = [
        "# Written by //bazel:system_library.bzl from the installed Debian packages: " +
        " ".join(rctx.attr.packages),
        'package(default_visibility = ["//visibility:public"])',
        '_HDRS = glob(["include/**"])',
    ]
    for name in sorted(libraries.keys()):
        module = libraries[name]
        defines = [f[2:] for f in _pkg_config(rctx, "--cflags-only-other", module) if f.startswith("-D")]
        build.append(_cc_library(name, _pkg_config(rctx, "--libs", module), defines))
    for name in sorted(rctx.attr.linkopts.keys()):
        build.append(_cc_library(name, _words(rctx.attr.linkopts[name]), []))
    for name in sorted(rctx.attr.binaries.keys()):
        path = rctx.attr.binaries[name]
        if not rctx.path(path).exists:
            _missing(rctx, path)
        rctx.symlink(path, "bin/" + name)
        build.append('exports_files(["bin/%s"])' % name)
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD.bazel", "\n".join(build) + "\n")

system_library = repository_rule(
    implementation = _system_library_impl,
    local = True,
    attrs = {
        "packages": attr.string_list(mandatory = True, doc = "Debian packages that provide the library, named in errors."),
        "headers": attr.string_list(doc = "Header files or folders under /usr/include."),
        "pkg_config": attr.string_dict(doc = "cc_library name -> pkg-config module."),
        "pkg_config_prefix": attr.string(doc = "Also make one cc_library per pkg-config module with this prefix, named without it."),
        "linkopts": attr.string_dict(doc = "cc_library name -> link flags, for libraries without a pkg-config module."),
        "binaries": attr.string_dict(doc = "name -> absolute path of a program, exported as bin/<name>."),
    },
)
