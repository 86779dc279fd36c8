"""`fuzz_binary`: a fuzzer's binary from its entry point's library.

Under --config=fuzz (the :fuzzing setting) the binary links libFuzzer's
main; otherwise replay_main.cc, which runs the files it is given through
the entry point once (docs/fuzzing.md).
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//bazel:copts.bzl", "TROUPE_COPTS")

def fuzz_binary(name, entry):
    """A fuzzer named `name` around `entry`, an alwayslink library with LLVMFuzzerTestOneInput."""
    cc_binary(
        name = name,
        srcs = select({
            ":fuzzing": [],
            "//conditions:default": ["replay_main.cc"],
        }),
        copts = TROUPE_COPTS,
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        deps = [entry],
    )
