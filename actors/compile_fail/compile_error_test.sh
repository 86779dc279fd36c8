#!/usr/bin/env bash
# A mistake users make fails to compile with troupe's own words first.
# Compiles two snippets against troupe's headers: the control must build (so
# the error comes from the mistake, not from the setup); the snippet must
# not, and its first error line must contain troupe's message.
#
#   compile_error_test.sh --control=FILE --snippet=FILE --first_error=TEXT
#       [--std=c++17]      the snippet's language standard (default c++20;
#                          the control is always C++20)
#       [--names=A,B]      each must appear up to the first error (the
#                          instantiation context: the types it is about)
#       [--absent=TEXT]    must appear nowhere in the output (noise from
#                          troupe's internals)
set -euo pipefail
root="$PWD"  # the runfiles tree of the workspace

std=c++20 control= snippet= first_error= names= absent=
for arg in "$@"; do
  case "$arg" in
    --std=*) std="${arg#*=}" ;;
    --control=*) control="${arg#*=}" ;;
    --snippet=*) snippet="${arg#*=}" ;;
    --first_error=*) first_error="${arg#*=}" ;;
    --names=*) names="${arg#*=}" ;;
    --absent=*) absent="${arg#*=}" ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [[ -z "$control" || -z "$snippet" || -z "$first_error" ]]; then
  echo "--control, --snippet and --first_error are required" >&2
  exit 2
fi

compile() {
  g++ -std="$1" -fsyntax-only -I"$root" -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL "$2" 2>&1
}
fail() {
  printf '%s\n' "$out" >&2
  echo "$snippet: $1" >&2
  exit 1
}

if ! out="$(compile c++20 "$control")"; then
  printf '%s\n' "$out" >&2
  echo "the control $control did not compile: the test setup is broken" >&2
  exit 1
fi
if out="$(compile "$std" "$snippet")"; then
  fail "compiled (-std=$std), but must not"
fi
line="$(grep -m1 -n 'error:' <<<"$out" | cut -d: -f1 || true)"
[[ -n "$line" ]] || fail "failed without an error line"
head_of_output="$(head -n "$line" <<<"$out")"
first="$(tail -n 1 <<<"$head_of_output")"
grep -qF -- "$first_error" <<<"$first" || fail "the first error is not troupe's: it lacks '$first_error'"
IFS=, read -r -a wanted <<<"$names"
for name in "${wanted[@]}"; do
  grep -qF -- "$name" <<<"$head_of_output" || fail "the output up to the first error does not name $name"
done
if [[ -n "$absent" ]] && grep -qF -- "$absent" <<<"$out"; then
  fail "the output contains '$absent'"
fi
echo "$first"
echo "$(basename "$snippet"): refused with troupe's message first"
