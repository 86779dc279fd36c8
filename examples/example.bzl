"""`troupe_example`: an example program and the smoke test that runs it."""

load("@rules_cc//cc:defs.bzl", "cc_binary")
load("//bazel:copts.bzl", "TROUPE_COPTS")

def troupe_example(name, deps, expect, test_args = []):
    """A cc_binary `name` from `name`.cc, and `name`_test.

    The test runs the program with `test_args` (small sizes) and checks that
    it succeeds and prints `expect`. Correctness only: no timing asserted.
    """
    cc_binary(
        name = name,
        srcs = [name + ".cc"],
        copts = TROUPE_COPTS,
        deps = deps,
    )
    native.sh_test(
        name = name + "_test",
        size = "small",
        srcs = ["run_example_test.sh"],
        args = ["$(location :%s)" % name, "'%s'" % expect] + test_args,
        data = [":" + name],
    )
