"""`capnp_cc_library`: Cap'n Proto schemas compiled into a cc_library.

    load("//bazel:capnp.bzl", "capnp_cc_library")

    capnp_cc_library(
        name = "envelope_capnp",
        srcs = ["envelope.capnp"],
        deps = [":common_capnp"],   # libraries whose schemas these import
    )

A schema `net/wire/envelope.capnp` becomes the header
"net/wire/envelope.capnp.h". Schemas import each other by their path from the
repository root (`import "/net/wire/common.capnp";`) and Cap'n Proto's own
schemas as usual (`import "/capnp/c++.capnp";`). The compiler is Debian's
`capnp` with the `capnpc-c++` plugin, exposed by @capnproto.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")
load("//bazel:copts.bzl", "TROUPE_COPTS")

def capnp_cc_library(name, srcs, deps = [], visibility = None, **kwargs):
    """Compiles `srcs` with capnpc-c++ into a cc_library named `name`.

    Args:
      name: the cc_library.
      srcs: .capnp files of this package.
      deps: other capnp_cc_library targets whose schemas `srcs` import.
      visibility: of the cc_library and of the schema filegroup.
      **kwargs: passed to the cc_library (tags, testonly, ...).
    """
    repo = native.repository_name()
    repo_root = "." if repo == "@" else "external/" + repo[1:]
    package_dir = native.package_name()
    src_prefix = repo_root + ("/" + package_dir if package_dir else "")

    # The schemas of this library and of everything it imports, for importers.
    native.filegroup(
        name = name + "_schemas",
        srcs = srcs + [d + "_schemas" for d in deps],
        visibility = visibility,
    )

    outs = []
    for src in srcs:
        outs += [src + ".h", src + ".c++"]

    native.genrule(
        name = name + "_compile",
        srcs = [name + "_schemas"],
        outs = outs,
        tools = [
            "@capnproto//:bin/capnp",
            "@capnproto//:bin/capnpc-c++",
        ],
        cmd = " ".join([
            "$(location @capnproto//:bin/capnp) compile",
            "--no-standard-import --import-path=/usr/include",
            "--import-path=" + repo_root,
            "--src-prefix=" + src_prefix,
            "--output=$(location @capnproto//:bin/capnpc-c++):$(RULEDIR)",
        ] + [src_prefix + "/" + s for s in srcs]),
        message = "Compiling Cap'n Proto schemas of " + name,
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
