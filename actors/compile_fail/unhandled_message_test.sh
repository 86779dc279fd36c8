#!/usr/bin/env bash
# Sending a message type an actor has no handler for fails at compile time,
# with an error that names the problem. Compiles two snippets against the
# headers: the control must build, the other must fail with troupe's message.
set -euo pipefail
root="$PWD"  # the runfiles tree of the workspace
compile() {
  g++ -std=c++20 -fsyntax-only -I"$root" -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL "$1" 2>&1
}
if ! out="$(compile actors/compile_fail/handled_message.cc)"; then
  printf '%s\n' "$out" >&2
  echo "the control snippet did not compile: the test setup is broken" >&2
  exit 1
fi
if out="$(compile actors/compile_fail/unhandled_message.cc)"; then
  echo "a Tell of an unhandled message type compiled" >&2
  exit 1
fi
if ! grep -q "has no handler" <<<"$out"; then
  printf '%s\n' "$out" >&2
  echo "the compile error does not say 'has no handler'" >&2
  exit 1
fi
grep -m1 "has no handler" <<<"$out"
echo "unhandled_message_test: the compiler refuses it with troupe's message"
