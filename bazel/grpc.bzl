"""Protocol Buffers and gRPC services in Bazel: `grpc_cc_library`.

    load("//bazel:grpc.bzl", "grpc_cc_library")

    grpc_cc_library(
        name = "etcd_grpc",
        srcs = ["etcd.proto"],
    )

compiles .proto files with Debian's `protoc` (@protobuf) into messages
(--cpp_out) and, with Debian's `grpc_cpp_plugin` (@grpc), into service stubs
(--grpc_out). A file `cluster/etcd/etcd.proto` becomes the headers
"cluster/etcd/etcd.pb.h" (messages) and "cluster/etcd/etcd.grpc.pb.h"
(stubs), and the library links gRPC C++ and protobuf. Only targets that
depend on such a library link them: troupe's core does not.

A .proto imports another of the repository by its path from the repository
root (`import "cluster/etcd/kv.proto";`), with that file's library in
`deps`, and protobuf's own (`import "google/protobuf/timestamp.proto";`)
as usual, from /usr/include.

The generated code is protoc's, not troupe's: it is compiled without
TROUPE_COPTS, so its warnings never fail a --config=ci build.
"""

load("@rules_cc//cc:defs.bzl", "cc_library")

_PROTOC = "@protobuf//:bin/protoc"
_PLUGIN = "@grpc//:bin/grpc_cpp_plugin"

def _repo_root(repo):
    """The execution-root path of a repository: "" for the main one."""
    return "" if repo in ("", "@") else "external/" + repo.lstrip("@")

def _join(*parts):
    return "/".join([p for p in parts if p])

def grpc_cc_library(name, srcs, deps = [], visibility = None, **kwargs):
    """Compiles `srcs` with protoc and grpc_cpp_plugin into a cc_library `name`.

    Args:
      name: the cc_library; `name`_protos is the filegroup of its .proto
        files and of those they import, `name`_compile the protoc step.
      srcs: .proto files of this package (source files, not generated).
      deps: other grpc_cc_library targets whose .proto files `srcs` import.
      visibility: of the cc_library and of the .proto filegroup.
      **kwargs: passed to the cc_library (tags, testonly, ...).
    """
    repo_root = _repo_root(native.repository_name())
    testonly = kwargs.get("testonly", False)

    native.filegroup(
        name = name + "_protos",
        srcs = srcs + [d + "_protos" for d in deps],
        visibility = visibility,
        testonly = testonly,
    )

    outs = []
    for src in srcs:
        if not src.endswith(".proto"):
            fail("grpc_cc_library %s: %s is not a .proto file" % (name, src))
        stem = src[:-len(".proto")]
        outs += [stem + ".pb.h", stem + ".pb.cc", stem + ".grpc.pb.h", stem + ".grpc.pb.cc"]

    # protoc names each file by its path under the first --proto_path that
    # holds it: the repository root, so outputs land in this package's
    # folder under $(GENDIR) and generated includes read "pkg/x.pb.h".
    out_dir = _join("$(GENDIR)", repo_root) or "."
    native.genrule(
        name = name + "_compile",
        srcs = srcs + [name + "_protos"],
        outs = outs,
        tools = [_PROTOC, _PLUGIN],
        cmd = " ".join(
            ["$(location %s)" % _PROTOC] +
            ["--proto_path=" + (repo_root or "."), "--proto_path=/usr/include"] +
            ["--cpp_out=" + out_dir] +
            ["--plugin=protoc-gen-grpc=$(location %s)" % _PLUGIN, "--grpc_out=" + out_dir] +
            ["$(execpath %s)" % s for s in srcs],
        ),
        message = "Compiling protobuf and gRPC of " + name,
        testonly = testonly,
    )

    cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + [
            "@grpc//:grpc++",
            "@protobuf",
        ],
        visibility = visibility,
        **kwargs
    )
