#!/usr/bin/env bash
# Runs an example program with small arguments and checks that it succeeds
# and prints the line that says so: run_example_test.sh <binary> <expected
# text> [args...]
set -euo pipefail
binary="$1"; expected="$2"; shift 2
output="$("$binary" "$@")"
printf '%s\n' "$output"
if ! grep -qF -- "$expected" <<<"$output"; then
  echo "expected the output to contain: $expected" >&2
  exit 1
fi
