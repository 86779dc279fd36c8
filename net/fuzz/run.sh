#!/usr/bin/env bash
# Builds the fuzzers with clang (--config=fuzz, in their own Bazel output
# base) and runs them one after the other for a bounded time in all, each
# on its seed corpus: frame_fuzzer (decoding and reading frames) for a
# third of the time, node_fuzzer (the node's handshake and dispatch) for
# the rest. Exits non-zero on a finding (crash, sanitizer report, leak,
# broken invariant, timeout, out of memory) and prints the number of
# executions of each. See docs/fuzzing.md.
#
#   net/fuzz/run.sh [SECONDS] [libFuzzer flags...]     default 60 seconds in all
#
# Environment:
#   TROUPE_FUZZ_OUTPUT_BASE  Bazel output base of the clang build
#                            (default ~/.cache/troupe-fuzz). Never the
#                            default one: the clang toolchain would replace
#                            the gcc one there.
#   TROUPE_FUZZ_TARGETS      which fuzzers, in order (default "frame node";
#                            one name gives it all the seconds)
#   TROUPE_FUZZ_WORKERS      parallel fuzzing processes (default 1; more
#                            runs libFuzzer's -fork=N)
#   TROUPE_FUZZ_WORK_DIR     where new inputs, the logs and crash inputs go
#                            (default: a fresh directory under /tmp, kept),
#                            one subdirectory per fuzzer
#
# New interesting inputs land in $TROUPE_FUZZ_WORK_DIR/<fuzzer>/corpus, not
# in the checked-in corpora; crash inputs in .../<fuzzer>/artifacts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds="${1:-60}"
shift || true
output_base="${TROUPE_FUZZ_OUTPUT_BASE:-$HOME/.cache/troupe-fuzz}"
read -r -a targets <<<"${TROUPE_FUZZ_TARGETS:-frame node}"
workers="${TROUPE_FUZZ_WORKERS:-1}"
work="${TROUPE_FUZZ_WORK_DIR:-$(mktemp -d /tmp/troupe-fuzz.XXXXXX)}"

# The checked-in seeds of each fuzzer.
declare -A seeds=([frame]=net/fuzz/corpus [node]=net/fuzz/node_corpus)
labels=()
for t in "${targets[@]}"; do
  [[ -n "${seeds[$t]:-}" ]] || { echo "fuzz: unknown fuzzer '$t' (frame, node)" >&2; exit 2; }
  labels+=("//net/fuzz:${t}_fuzzer")
done

# The clang build's server goes away by itself a minute after its last use.
bazel=(./tools/bazel "--output_base=$output_base" --max_idle_secs=60)

echo "fuzz: building ${labels[*]} with clang (output base $output_base)"
# Gold warns once per ASan check routine that it cannot export it (clang
# 14 with -fsanitize=address); harmless, and hundreds of lines.
set +e
"${bazel[@]}" build --config=fuzz "${labels[@]}" 2>&1 | grep -v "warning: Cannot export local symbol '__asan_"
build_status="${PIPESTATUS[0]}"
set -e
[[ "$build_status" == 0 ]] || { echo "fuzz: the build failed" >&2; exit 1; }
bin="$("${bazel[@]}" info --config=fuzz bazel-bin 2>/dev/null)/net/fuzz"

# Function names and lines in reports: Debian's llvm-14 has the symbolizer
# under a versioned name only.
symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
if [[ -x "$symbolizer" ]]; then
  export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$symbolizer}"
  export UBSAN_SYMBOLIZER_PATH="${UBSAN_SYMBOLIZER_PATH:-$symbolizer}"
fi
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# Runs fuzzer $1 for $2 seconds; 0 if it found nothing.
fuzz() {
  local target="$1" secs="$2" dir="$work/$1" status=0 runs
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local flags=(
    "-max_total_time=$secs"
    -rss_limit_mb=2048
    -timeout=10
    -print_final_stats=1
    "-artifact_prefix=$dir/artifacts/"
  )
  (( workers > 1 )) && flags+=("-fork=$workers")
  # The node's worker and timer threads free memory after an input has
  # returned, so libFuzzer's per-input leak check (malloc and free counts
  # differ, then a full LeakSanitizer scan) would run after every input and
  # cost 100 ms each. LeakSanitizer still checks at exit.
  [[ "$target" == node ]] && flags+=(-detect_leaks=0)
  echo "fuzz: ${target}_fuzzer for ${secs}s with ${workers} worker(s); inputs, log and findings in $dir"
  "$bin/${target}_fuzzer" "${flags[@]}" "${extra[@]}" "$dir/corpus" "${seeds[$target]}" >"$dir/fuzz.log" 2>&1 ||
    status=$?
  # libFuzzer's own summary: executions (-print_final_stats), then the
  # findings, if any, with the input that caused them.
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -n 1)"
  if [[ -z "$runs" ]]; then
    # Fork mode prints no final stats; its last status line has the count.
    runs="$(grep -oE '^#[0-9]+' "$dir/fuzz.log" | tail -n 1 | tr -d '#')"
  fi
  local edges
  edges="$(grep -oE 'cov: [0-9]+' "$dir/fuzz.log" | tail -n 1 | tr -dc '0-9')"
  echo "fuzz: ${target}_fuzzer: ${runs:-?} executions in ${secs}s ($(( ${runs:-0} / (secs > 0 ? secs : 1) ))/s)," \
    "${edges:-?} edges, new inputs: $(find "$dir/corpus" -type f | wc -l)"
  if (( status != 0 )) || [[ -n "$(ls -A "$dir/artifacts")" ]]; then
    echo "fuzz: ${target}_fuzzer: FINDING (exit status $status); the end of the log:" >&2
    tail -n 60 "$dir/fuzz.log" >&2
    echo "fuzz: inputs that caused it:" >&2
    ls -l "$dir/artifacts" >&2
    echo "fuzz: replay one with: $bin/${target}_fuzzer <input>   (minimize: -minimize_crash=1 -runs=10000)" >&2
    return 1
  fi
}

extra=("$@")
# The first fuzzer gets a third of the time (the frame fuzzer saturates in
# seconds), the last what remains; one fuzzer gets it all.
found=0
left="$seconds"
for i in "${!targets[@]}"; do
  if (( i + 1 == ${#targets[@]} )); then
    secs="$left"
  else
    secs=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
  fi
  left=$(( left - secs > 0 ? left - secs : 0 ))
  (( secs > 0 )) || continue
  fuzz "${targets[$i]}" "$secs" || found=1
done
(( found == 0 )) || exit 1
echo "fuzz: no findings"
