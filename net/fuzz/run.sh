#!/usr/bin/env bash
# Builds the frame fuzzer with clang (--config=fuzz, in its own Bazel output
# base) and runs it for a bounded time on the seed corpus. Exits non-zero on
# a finding (crash, sanitizer report, leak, timeout, out of memory) and
# prints the number of executions. See docs/fuzzing.md.
#
#   net/fuzz/run.sh [SECONDS] [libFuzzer flags...]     default 60 seconds
#
# Environment:
#   TROUPE_FUZZ_OUTPUT_BASE  Bazel output base of the clang build
#                            (default ~/.cache/troupe-fuzz). Never the
#                            default one: the clang toolchain would replace
#                            the gcc one there.
#   TROUPE_FUZZ_WORKERS      parallel fuzzing processes (default 1; more
#                            runs libFuzzer's -fork=N)
#   TROUPE_FUZZ_WORK_DIR     where new inputs, the log and crash inputs go
#                            (default: a fresh directory under /tmp, kept)
#
# New interesting inputs land in $TROUPE_FUZZ_WORK_DIR/corpus, not in the
# checked-in corpus; crash inputs in $TROUPE_FUZZ_WORK_DIR/artifacts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${1:-60}"
shift || true
output_base="${TROUPE_FUZZ_OUTPUT_BASE:-$HOME/.cache/troupe-fuzz}"
workers="${TROUPE_FUZZ_WORKERS:-1}"
work="${TROUPE_FUZZ_WORK_DIR:-$(mktemp -d /tmp/troupe-fuzz.XXXXXX)}"
mkdir -p "$work/corpus" "$work/artifacts"

# The clang build's server goes away by itself a minute after its last use.
bazel=(./tools/bazel "--output_base=$output_base" --max_idle_secs=60)

echo "fuzz: building //net/fuzz:frame_fuzzer with clang (output base $output_base)"
# Gold warns once per ASan check routine that it cannot export it (clang
# 14 with -fsanitize=address); harmless, and hundreds of lines.
set +e
"${bazel[@]}" build --config=fuzz //net/fuzz:frame_fuzzer 2>&1 | grep -v "warning: Cannot export local symbol '__asan_"
build_status="${PIPESTATUS[0]}"
set -e
[[ "$build_status" == 0 ]] || { echo "fuzz: the build failed" >&2; exit 1; }
fuzzer="$("${bazel[@]}" info --config=fuzz bazel-bin 2>/dev/null)/net/fuzz/frame_fuzzer"

flags=(
  "-max_total_time=$seconds"
  -rss_limit_mb=2048
  -timeout=10
  -print_final_stats=1
  "-artifact_prefix=$work/artifacts/"
)
(( workers > 1 )) && flags+=("-fork=$workers")

echo "fuzz: running for ${seconds}s with ${workers} worker(s); inputs, log and findings in $work"
# Function names and lines in reports: Debian's llvm-14 has the symbolizer
# under a versioned name only.
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [[ -x "$symbolizer" ]]; then
  export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$symbolizer}"
  export UBSAN_SYMBOLIZER_PATH="${UBSAN_SYMBOLIZER_PATH:-$symbolizer}"
fi
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
status=0
"$fuzzer" "${flags[@]}" "$@" "$work/corpus" net/fuzz/corpus >"$work/fuzz.log" 2>&1 || status=$?

# libFuzzer's own summary: executions (-print_final_stats), then the
# findings, if any, with the input that caused them.
runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)"
if [[ -z "$runs" ]]; then
  # Fork mode prints no final stats; its last status line has the count.
  runs="$(grep -oE '^#[0-9]+' "$work/fuzz.log" | tail -n 1 | tr -d '#')"
fi
echo "fuzz: ${runs:-?} executions in ${seconds}s ($(( ${runs:-0} / (seconds > 0 ? seconds : 1) ))/s), new inputs: $(find "$work/corpus" -type f | wc -l)"

if (( status != 0 )) || [[ -n "$(ls -A "$work/artifacts")" ]]; then
  echo "fuzz: FINDING (exit status $status); the end of the log:" >&2
  tail -n 60 "$work/fuzz.log" >&2
  echo "fuzz: inputs that caused it:" >&2
  ls -l "$work/artifacts" >&2
  echo "fuzz: replay one with: $fuzzer <input>   (minimize: -minimize_crash=1 -runs=10000)" >&2
  exit 1
fi
echo "fuzz: no findings"
