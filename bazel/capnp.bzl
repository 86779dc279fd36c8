"""Cap'n Proto schemas in Bazel: `capnp_cc_library` and `troupe_messages`.

    load("//bazel:capnp.bzl", "capnp_cc_library", "troupe_messages")

`capnp_cc_library` compiles schemas with Cap'n Proto's own C++ generator
(`capnpc-c++`): readers and builders, for troupe's own wire format.

    capnp_cc_library(
        name = "envelope_capnp",
        srcs = ["envelope.capnp"],
        deps = [":common_capnp"],   # libraries whose schemas these import
    )

A schema `net/wire/envelope.capnp` becomes the header
"net/wire/envelope.capnp.h".

`troupe_messages` compiles message schemas with troupe's plugin
(`//net/codegen:capnpc-troupe`): plain C++ structs that actors send to each
other, across nodes too, and their WireTraits (see docs/messages.md).

    troupe_messages(
        name = "chat_messages",
        srcs = ["chat.capnp"],
        deps = ["//common:common_messages"],   # troupe_messages they import
    )

A schema `chat/chat.capnp` becomes the header "chat/chat.troupe.h".

In both, schemas import each other by their path from the repository root
(`import "/net/wire/common.capnp";`), list the imported library in `deps`,
and import Cap'n Proto's own schemas as usual (`import "/capnp/c++.capnp";`).
The compiler is Debian's `capnp`, exposed by @capnproto.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")
load("//bazel:copts.bzl", "TROUPE_COPTS")

# Labels resolved in troupe's repository, wherever the macro is used.
_TROUPE_SCHEMAS = Label("//net/wire:troupe_schemas")
_PLUGIN = Label("//net/codegen:capnpc-troupe")
_MESSAGE_DEPS = [
    Label("//actors"),
    Label("//net/codegen:runtime"),
    Label("//net/wire:builtin"),
    Label("//net/wire:codec"),
]

def _repo_root(repo):
    """The execution-root path of a repository: "" for the main one."""
    return "" if repo in ("", "@") else "external/" + repo.lstrip("@")

def _join(*parts):
    return "/".join([p for p in parts if p])

def capnp_cc_library(name, srcs, deps = [], visibility = None, **kwargs):
    """Compiles `srcs` with capnpc-c++ into a cc_library named `name`.

    A source may also be a file generated in this package (a genrule's
    output): it is compiled and imported by its path as if it were in the
    source tree.

    Args:
      name: the cc_library.
      srcs: .capnp files of this package.
      deps: other capnp_cc_library targets whose schemas `srcs` import.
      visibility: of the cc_library and of the schema filegroup.
      **kwargs: passed to the cc_library (tags, testonly, ...).
    """
    repo_root = _repo_root(native.repository_name())

    # The schemas of this library and of everything it imports, for importers.
    native.filegroup(
        name = name + "_schemas",
        srcs = srcs + [d + "_schemas" for d in deps],
        visibility = visibility,
        testonly = kwargs.get("testonly", False),
    )

    outs = []
    for src in srcs:
        outs += [src + ".h", src + ".c++"]

    # Source and generated schemas alike are named, imported and written by
    # their path from the repository root (src-prefix and import path are
    # the same roots, or capnp would see one file under two names).
    roots = [repo_root or ".", _join("$(GENDIR)", repo_root)]
    import_paths = ["/usr/include"] + roots

    # capnpc-c++ includes the headers of imported schemas as <pkg/x.capnp.h>,
    # which Bazel's include paths (-iquote for the output tree) do not find;
    # the sed makes them "pkg/x.capnp.h".
    native.genrule(
        name = name + "_compile",
        srcs = srcs + [name + "_schemas"],
        outs = outs,
        tools = [
            "@capnproto//:bin/capnp",
            "@capnproto//:bin/capnpc-c++",
        ],
        # capnp refuses a --src-prefix that is not a directory, and a source
        # root may be absent from the sandbox when all srcs are generated.
        cmd = "prefixes=; for p in %s; do if [ -d $$p ]; then prefixes=\"$$prefixes --src-prefix=$$p\"; fi; done; " % (
            " ".join(roots)
        ) + " ".join(
            ["$(location @capnproto//:bin/capnp) compile --no-standard-import"] +
            ["--import-path=" + p for p in import_paths] +
            ["$$prefixes"] +
            ["--output=$(location @capnproto//:bin/capnpc-c++):" + _join("$(GENDIR)", repo_root)] +
            ["$(execpath %s)" % s for s in srcs],
        ) + " && sed -i 's|^#include <\\(.*\\.capnp\\.h\\)>$$|#include \"\\1\"|' " +
              " ".join(["$(execpath %s.h)" % s for s in srcs]),
        message = "Compiling Cap'n Proto schemas of " + name,
        testonly = kwargs.get("testonly", False),
    )

    cc_library(
        name = name,
        srcs = [s + ".c++" for s in srcs],
        hdrs = [s + ".h" for s in srcs],
        copts = TROUPE_COPTS,
        deps = deps + ["@capnproto//:capnp"],
        visibility = visibility,
        **kwargs
    )

def troupe_messages(name, srcs, deps = [], visibility = None, **kwargs):
    """Compiles message schemas with capnpc-troupe into a cc_library `name`.

    Each schema `pkg/foo.capnp` becomes "pkg/foo.troupe.h" (and foo.troupe.cc):
    one plain C++ struct per schema struct, in the schema's $Cxx.namespace,
    and its troupe::WireTraits specialization. Message schemas may import
    "/net/wire/troupe.capnp" to carry actor references (Troupe.ActorAddress)
    without listing anything in `deps`. A schema using something troupe does
    not support (unions, groups, interfaces, AnyPointer, generics, ...) fails
    this target's build with one line per problem, naming file, struct and
    field. See docs/messages.md.

    Args:
      name: the cc_library; `name`_schemas is the filegroup of its schemas
        and of those they import, `name`_compile the compile step.
      srcs: .capnp files of this package.
      deps: other troupe_messages targets whose schemas `srcs` import.
      visibility: of the cc_library and of the schema filegroup.
      **kwargs: passed to the cc_library (tags, testonly, ...).
    """
    repo_root = _repo_root(native.repository_name())
    package_dir = native.package_name()
    troupe_root = _repo_root(_TROUPE_SCHEMAS.workspace_name)

    native.filegroup(
        name = name + "_schemas",
        srcs = srcs + [d + "_schemas" for d in deps] + [str(_TROUPE_SCHEMAS)],
        visibility = visibility,
        testonly = kwargs.get("testonly", False),
    )

    outs = []
    for src in srcs:
        stem = src[:-len(".capnp")] if src.endswith(".capnp") else src
        outs += [stem + ".troupe.h", stem + ".troupe.cc"]

    # The plugin writes each schema's code under its path from the
    # repository root (the src-prefix), which is where the outputs of this
    # package belong under $(GENDIR).
    import_paths = ["/usr/include", repo_root or "."]
    if troupe_root != repo_root:
        import_paths.append(troupe_root or ".")
    native.genrule(
        name = name + "_compile",
        srcs = srcs + [name + "_schemas"],
        outs = outs,
        tools = [
            "@capnproto//:bin/capnp",
            str(_PLUGIN),
        ],
        cmd = " ".join(
            ["$(location @capnproto//:bin/capnp) compile --no-standard-import"] +
            ["--import-path=" + p for p in import_paths] +
            ["--src-prefix=" + (repo_root or ".")] +
            ["--output=$(location %s):%s" % (str(_PLUGIN), _join("$(GENDIR)", repo_root))] +
            [_join(repo_root or ".", package_dir, s) for s in srcs],
        ),
        message = "Compiling troupe message schemas of " + name,
        testonly = kwargs.get("testonly", False),
    )

    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        copts = TROUPE_COPTS,
        deps = deps + [str(d) for d in _MESSAGE_DEPS] + [
            "@absl//:core_headers",
            "@absl//:status",
            "@absl//:statusor",
            "@capnproto//:capnp",
        ],
        visibility = visibility,
        **kwargs
    )
