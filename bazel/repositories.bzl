"""Every external repository troupe needs, taken from the local machine.

Call from a WORKSPACE:

    load("@troupe//bazel:repositories.bzl", "troupe_dependencies")
    troupe_dependencies()

`troupe_dependencies` defines each repository only if the WORKSPACE has not
defined one of that name already, so a project can bring its own.

Two groups:
  1. The rule repositories Bazel 4 would otherwise download (`rules_cc`,
     `rules_java`, `platforms`, `remote_coverage_tools`): written here, or
     taken from Debian's bazel-rules-java and bazel-platforms packages.
  2. The C++ libraries, from Debian's -dev packages (see system_library.bzl).
"""

load(":system_library.bzl", "system_library")

# Every rule @bazel_tools loads from @rules_cc//cc:defs.bzl, forwarded to the
# rule built into Bazel 4.
_FORWARDED_CC_RULES = [
    "cc_binary",
    "cc_import",
    "cc_library",
    "cc_proto_library",
    "cc_test",
    "cc_toolchain",
    "cc_toolchain_suite",
    "fdo_prefetch_hints",
    "fdo_profile",
    "objc_import",
    "objc_library",
]

def _forwarding_rules_cc_impl(rctx):
    defs = ['"""rules_cc for an offline Bazel 4: each rule forwards to the native one."""\n']
    for rule in _FORWARDED_CC_RULES:
        defs.append("def {r}(**attrs):\n    native.{r}(**attrs)\n".format(r = rule))
    rctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n')
    rctx.file("BUILD.bazel", "")
    rctx.file("cc/BUILD.bazel", "")
    rctx.file("cc/defs.bzl", "\n".join(defs))

_forwarding_rules_cc = repository_rule(implementation = _forwarding_rules_cc_impl)

def _coverage_stand_in_impl(rctx):
    # Bazel 4 names these targets in every test's implicit dependencies. The
    # real ones are downloaded; offline, `bazel coverage` says why it cannot run.
    rctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    rctx.file(
        "unavailable.sh",
        "#!/bin/sh\necho 'bazel coverage is not available in this offline build of troupe' >&2\nexit 1\n",
        executable = True,
    )
    rctx.file("BUILD.bazel", """
package(default_visibility = ["//visibility:public"])
sh_binary(name = "coverage_report_generator", srcs = ["unavailable.sh"])
sh_binary(name = "lcov_merger", srcs = ["unavailable.sh"])
""")

_coverage_stand_in = repository_rule(implementation = _coverage_stand_in_impl)

def _maybe(repo_rule, name, **kwargs):
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)

def troupe_bazel_rules():
    """The rule repositories of Bazel 4, without a download."""
    _maybe(_forwarding_rules_cc, name = "rules_cc")
    _maybe(native.local_repository, name = "rules_java", path = "/usr/share/bazel/rules/java")
    _maybe(native.local_repository, name = "platforms", path = "/usr/share/bazel/tools/platforms")
    _maybe(_coverage_stand_in, name = "remote_coverage_tools")

def troupe_dependencies():
    """Rule repositories and system libraries troupe builds against."""
    troupe_bazel_rules()
    _maybe(
        system_library,
        name = "absl",
        packages = ["libabsl-dev"],
        headers = ["absl"],
        pkg_config_prefix = "absl_",
    )
    _maybe(
        system_library,
        name = "capnproto",
        packages = ["capnproto", "libcapnp-dev"],
        headers = ["capnp", "kj"],
        pkg_config = {"capnp": "capnp", "kj": "kj", "kj_async": "kj-async"},
        binaries = {"capnp": "/usr/bin/capnp", "capnpc-c++": "/usr/bin/capnpc-c++"},
    )
    _maybe(
        system_library,
        name = "concurrentqueue",
        packages = ["libconcurrentqueue-dev"],
        headers = ["concurrentqueue"],
        linkopts = {"concurrentqueue": "-pthread"},
    )
    _maybe(
        system_library,
        name = "googletest",
        packages = ["libgtest-dev", "libgmock-dev"],
        headers = ["gtest", "gmock"],
        pkg_config = {"gtest": "gtest", "gtest_main": "gtest_main", "gmock": "gmock", "gmock_main": "gmock_main"},
    )
    _maybe(
        system_library,
        name = "spdlog",
        packages = ["libspdlog-dev", "libfmt-dev"],
        headers = ["spdlog", "fmt"],
        pkg_config = {"spdlog": "spdlog"},
    )
    _maybe(
        system_library,
        name = "openssl",
        packages = ["libssl-dev"],
        headers = ["openssl"],
        pkg_config = {"crypto": "libcrypto", "ssl": "libssl"},
    )
    _maybe(
        system_library,
        name = "benchmark",
        packages = ["libbenchmark-dev"],
        headers = ["benchmark"],
        pkg_config = {"benchmark": "benchmark"},
        linkopts = {"benchmark_main": "-lbenchmark_main -lbenchmark -pthread"},
    )
    _maybe(
        system_library,
        name = "protobuf",
        packages = ["libprotobuf-dev", "protobuf-compiler"],
        headers = ["google/protobuf"],
        pkg_config = {"protobuf": "protobuf"},
        binaries = {"protoc": "/usr/bin/protoc"},
    )
    _maybe(
        system_library,
        name = "grpc",
        packages = ["libgrpc++-dev", "protobuf-compiler-grpc"],
        headers = ["grpc", "grpcpp"],
        pkg_config = {"grpc++": "grpc++"},
        binaries = {"grpc_cpp_plugin": "/usr/bin/grpc_cpp_plugin"},
    )
    # No library: the etcd server that the etcd client's tests start.
    _maybe(
        system_library,
        name = "etcd_server",
        packages = ["etcd-server"],
        binaries = {"etcd": "/usr/bin/etcd"},
    )
    _maybe(
        system_library,
        name = "caf",
        packages = ["libcaf-dev"],
        headers = ["caf"],
        # CAF 0.17 ships no pkg-config file.
        linkopts = {"caf_core": "-lcaf_core -pthread", "caf_io": "-lcaf_io -lcaf_core -pthread"},
    )
