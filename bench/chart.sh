#!/usr/bin/env bash
# Draws the suite's results as a PNG: for each workload and metric, how many
# times better troupe is than the metric's baseline — CAF, or the raw TCP
# floor for remote-rtt — (log scale), beside the target.
#
#   ./tools/bazel run -c opt //bench:suite -- --json > results.jsonl
#   bench/chart.sh results.jsonl docs/benchmarks.png
#
# Needs gnuplot (Debian's gnuplot-nox); installs it if missing and root.
set -euo pipefail

if (( $# != 2 )); then
  echo "usage: bench/chart.sh <results.jsonl> <out.png>" >&2
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
