"""Compiler flags for troupe's own targets, in one place.

BUILD files pass `copts = TROUPE_COPTS` (or TROUPE_TEST_COPTS for tests and
benchmarks). `-std=c++20` is set once in .bazelrc. Under `--config=ci`,
warnings are errors for troupe's code; headers of system libraries are
included with -isystem and never fail the build.
"""

_WERROR = select({
    str(Label("//bazel:ci")): ["-Werror"],
    "//conditions:default": [],
})

TROUPE_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wnon-virtual-dtor",
    "-Wshadow=local",
] + _WERROR

TROUPE_TEST_COPTS = TROUPE_COPTS
