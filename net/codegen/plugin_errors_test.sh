#!/usr/bin/env bash
# capnpc-troupe refuses what troupe messages do not support, with a message
# naming file, struct and field. Runs `capnp compile` with the plugin on each
# schema of testdata/bad/, whose first line says what the error must contain,
# and on a good schema as a control.
#
# Usage: plugin_errors_test.sh <capnp> <capnpc-troupe> <bad schemas...>
set -euo pipefail
capnp="$1"
plugin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
shift 2
out="${TEST_TMPDIR:-$(mktemp -d)}/out"
mkdir -p "$out"

compile() {
  "$capnp" compile --no-standard-import --import-path=/usr/include --import-path=. --src-prefix=. \
    --output="$plugin:$out" "./$1" 2>&1
}

if ! log="$(compile net/codegen/testdata/common.capnp)"; then
  printf '%s\n' "$log" >&2
  echo "the control schema did not compile: the test setup is broken" >&2
  exit 1
fi
test -s "$out/net/codegen/testdata/common.troupe.h"

failures=0
for schema in "$@"; do
  expect="$(sed -n '1s/^# expect: //p' "$schema")"
  if log="$(compile "$schema")"; then
    echo "FAIL $schema: the plugin accepted it" >&2
    failures=$((failures + 1))
  elif ! grep -qF -- "$expect" <<<"$log"; then
    printf '%s\n' "$log" >&2
    echo "FAIL $schema: the error does not contain: $expect" >&2
    failures=$((failures + 1))
  else
    grep -F -- "$expect" <<<"$log"
  fi
done
if [[ $failures -ne 0 ]]; then
  exit 1
fi
echo "plugin_errors_test: $# schemas refused with the expected messages"
