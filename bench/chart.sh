#!/usr/bin/env bash
# Draws the suite's results as a PNG: for each workload and metric, how many
# times better troupe is than the metric's baseline — CAF, or the raw TCP
# floor for remote-rtt — (log scale), beside the target.
#
#   ./tools/bazel run -c opt //bench:suite -- --json > results.jsonl
#   bench/chart.sh results.jsonl docs/benchmarks.png
#
# With --scale, draws the cost curves of `suite --scale` instead, one PNG per
# curve into a directory: scale-skynet.png (time and peak resident bytes per
# actor against leaves, log-log), scale-oneway.png (messages/s against sender
# processes) and scale-ask.png (ask p50 and p99 against the load):
#
#   ./tools/bazel run -c opt //bench:suite -- --scale --json_out=$PWD/scale.jsonl
#   bench/chart.sh --scale scale.jsonl docs/
#
# Needs gnuplot (Debian's gnuplot-nox); installs it if missing and root.
set -euo pipefail

scale=0
if [[ "${1:-}" == "--scale" ]]; then
  scale=1
  shift
fi
if (( $# != 2 )); then
  echo "usage: bench/chart.sh <results.jsonl> <out.png>" >&2
  echo "       bench/chart.sh --scale <scale.jsonl> <out-dir>" >&2
  exit 2
fi
in="$1"
out="$2"

if ! command -v gnuplot >/dev/null 2>&1; then
  echo "chart: installing gnuplot-nox (Debian package) to draw the chart" >&2
  if (( EUID != 0 )); then
    echo "chart: not root; run: apt-get install --no-install-recommends gnuplot-nox" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox >&2
fi

data="$(mktemp)"
trap 'rm -f "$data"' EXIT

# --scale: the lines are
# {"curve": C, "x": X, "x_unit": XU, "workload": W, "system": S, "metric": M, "value": V, "unit": U}
if (( scale )); then
  mkdir -p "$out"
  # Rows "curve system metric x value" for gnuplot to select from.
  awk -F'"' '
    /"curve"/ {
      x = $7; sub(/^: */, "", x); sub(/, *$/, "", x)
      v = $25; sub(/^: */, "", v); sub(/, *$/, "", v)
      printf "%s %s %s %s %s\n", $4, $18, $22, x, v
    }' "$in" > "$data"
  if [[ ! -s "$data" ]]; then
    echo "chart: no cost-curve lines found in $in" >&2
    exit 1
  fi
  # A series of the data: "curve system metric" -> "x value" lines.
  series() { awk -v c="$1" -v s="$2" -v m="$3" '$1 == c && $2 == s && $3 == m { print $4, $5 }' "$data"; }
  dir="$(mktemp -d)"
  trap 'rm -f "$data"; rm -rf "$dir"' EXIT
  series skynet troupe time > "$dir/sky_t_time"
  series skynet caf time > "$dir/sky_c_time"
  series skynet troupe peak_bytes_per_actor > "$dir/sky_t_bytes"
  series skynet caf peak_bytes_per_actor > "$dir/sky_c_bytes"
  series oneway-peers troupe throughput > "$dir/oneway"
  series ask-load troupe p50 > "$dir/ask_p50"
  series ask-load troupe p99 > "$dir/ask_p99"
  gnuplot <<GNUPLOT
set terminal pngcairo size 1200,450 font "sans,10" noenhanced
set output "$out/scale-skynet.png"
set multiplot layout 1,2 title "skynet: cost against the tree's size (log-log)"
set logscale xy 10
set grid
set key top left
set xlabel "leaf actors"
set ylabel "time (s)"
plot "$dir/sky_t_time" using 1:2 with linespoints lw 2 title "troupe", \
     "$dir/sky_c_time" using 1:2 with linespoints lw 2 title "CAF 0.17.6"
set ylabel "peak resident bytes per actor"
set key top right
unset logscale y
set yrange [0:*]
plot "$dir/sky_t_bytes" using 1:2 with linespoints lw 2 title "troupe", \
     "$dir/sky_c_bytes" using 1:2 with linespoints lw 2 title "CAF 0.17.6"
unset multiplot
set output "$out/scale-oneway.png"
set terminal pngcairo size 700,450 font "sans,10" noenhanced
set title "remote one-way: sender processes into one node"
set logscale x 2
unset logscale y
set yrange [0:*]
set xlabel "sender processes (each its own node)"
set ylabel "messages/s into the node (millions)"
plot "$dir/oneway" using 1:(\$2/1e6) with linespoints lw 2 title "troupe"
set output "$out/scale-ask.png"
set title "ask round trip under load"
unset logscale x
set logscale y 10
set yrange [*:*]
set xlabel "background load (% of the saturated rate)"
set ylabel "round trip (us)"
plot "$dir/ask_p50" using 1:2 with linespoints lw 2 title "p50", \
     "$dir/ask_p99" using 1:2 with linespoints lw 2 title "p99"
GNUPLOT
  echo "chart: wrote $out/scale-skynet.png $out/scale-oneway.png $out/scale-ask.png"
  exit 0
fi

# The suite's JSON lines have a fixed field order:
# {"workload": W, "system": S, "metric": M, "value": V, "unit": U, "target": T, "baseline": B}
# (T: troupe's target as "times better than B", 0 for none; B: "caf" or "floor";
# for S = "troupe-tls", TLS's target against B = "troupe", not drawn here).
awk -F'"' '
  /"workload"/ {
    w = $4; s = $8; m = $12
    v = $15; sub(/^: */, "", v); sub(/, *$/, "", v)
    u = $18
    t = $21; sub(/^: */, "", t); sub(/ *[,}].*$/, "", t)
    b = $24
    key = w " " m
    if (!(key in seen)) { seen[key] = 1; order[n++] = key }
    val[key, s] = v
    unit[key] = u
    # troupe-tls lines carry their own target, set against plaintext troupe.
    if (s == "troupe") {
      target[key] = t
      base[key] = (b == "" ? "caf" : b)
    }
  }
  END {
    for (i = 0; i < n; i++) {
      key = order[i]
      t = val[key, "troupe"]; c = val[key, base[key]]
      if (t <= 0 || c <= 0) continue
      split(key, parts, " ")
      higher = (unit[key] == "msg/s")
      adv = higher ? t / c : c / t
      printf "\"%s %s\" %g %g\n", parts[1], parts[2], adv, target[key]
    }
  }' "$in" > "$data"

if [[ ! -s "$data" ]]; then
  echo "chart: no troupe/baseline pairs found in $in" >&2
  exit 1
fi

gnuplot <<GNUPLOT
set terminal pngcairo size 1200,650 font "sans,10" noenhanced
set output "$out"
set title "troupe vs CAF 0.17.6 (remote-rtt: vs the raw TCP floor): times better (log scale; above 1 = troupe ahead)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [0.125:*]
set grid ytics
set xtics rotate by -40 left
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
plot "$data" using 2:xtic(1) title "troupe advantage" lc rgb "#2b6cb0", \
     "" using (\$3 > 0 ? \$3 : 1/0) title "target" lc rgb "#d69e2e"
GNUPLOT
echo "chart: wrote $out"
