#!/usr/bin/env bash
# Runs every workload of the suite once, on both systems, at tiny sizes, and
# checks that each printed its figures (the remote ones also on the TCP floor
# and on troupe over TLS), and the cost curves of --scale at tiny sizes.
# Correctness only: no timing asserted.
set -euo pipefail
suite="$1"
sizes=(--workers=2 --skynet_leaves=1000 --pingpong_round_trips=1000 --pingpong_pairs=4
       --pingpong_pairs_round_trips=100 --fanin_senders=2 --fanin_messages=1000 --forkjoin_actors=4
       --forkjoin_messages=100 --forkjoin_creation_actors=100 --threadring_actors=10
       --threadring_hops=1000 --chameneos_creatures=10 --chameneos_meetings=1000 --big_actors=10
       --big_pings=100 --spawn_idle_actors=1000 --ask_latency_samples=100 --idle_seconds=0.1
       --restart_failures=100 --link_fanout_actors=100 --remote_rtt_samples=100
       --remote_oneway_messages=1000 --entity_rtt_samples=20 --entity_handoff_entities=200)

table="$("$suite" "${sizes[@]}")"
printf '%s\n' "$table"
for workload in $("$suite" --list | awk '{print $1}'); do
  if ! grep -q "^$workload " <<<"$table"; then
    echo "no figures for $workload" >&2
    exit 1
  fi
done
# troupe's remote workloads also ran over TLS, and printed their figures.
for workload in remote-rtt-tls remote-oneway-tls; do
  if ! grep "^$workload " <<<"$table" | grep -q ' us \| M/s '; then
    echo "no TLS figures for $workload" >&2
    exit 1
  fi
done

# --json: one object per measurement, both systems, and it parses.
json="$("$suite" "${sizes[@]}" --only=skynet,pingpong --json)"
printf '%s\n' "$json"
[[ "$(grep -c '"system": "troupe"' <<<"$json")" -ge 2 ]]
[[ "$(grep -c '"system": "caf"' <<<"$json")" -ge 2 ]]
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$json"
fi

# The remote workloads also measure the raw TCP floor and troupe over TLS,
# and name the system each target is set against (TLS's: plaintext troupe).
json="$("$suite" "${sizes[@]}" --only=remote-rtt,remote-oneway --json)"
printf '%s\n' "$json"
[[ "$(grep -c '"system": "floor"' <<<"$json")" -ge 4 ]]
[[ "$(grep -c '"system": "caf"' <<<"$json")" -ge 4 ]]
[[ "$(grep -c '"system": "troupe-tls"' <<<"$json")" -ge 4 ]]
grep -q '"workload": "remote-rtt", "system": "troupe", "metric": "p50", .*"baseline": "floor"' <<<"$json"
grep -q '"workload": "remote-oneway", "system": "troupe", "metric": "throughput", .*"target": 20, "baseline": "caf"' <<<"$json"
grep -q '"workload": "remote-rtt", "system": "troupe-tls", "metric": "p50", .*"target": 0.833333, "baseline": "troupe"' <<<"$json"
grep -q '"workload": "remote-oneway", "system": "troupe-tls", "metric": "throughput", .*"target": 0.666667, "baseline": "troupe"' <<<"$json"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <<<"$json"
fi

# --scale: every cost curve prints its points, and its JSON lines parse.
scale="$("$suite" --scale --workers=2 --scale_skynet_leaves=100,1000 --scale_peers=1,2 --scale_loads=0,50 \
           --oneway_peer_messages=2000 --ask_latency_samples=200 --json_out="$TEST_TMPDIR/scale.jsonl")"
printf '%s\n' "$scale"
for curve in skynet oneway-peers ask-load; do
  if [[ "$(grep -c "^$curve " <<<"$scale")" -lt 4 ]]; then
    echo "the cost curve $curve printed too few figures" >&2
    exit 1
  fi
done
grep -q '"curve": "skynet", "x": 1000, "x_unit": "leaves", "workload": "skynet-peak", "system": "caf", "metric": "peak_bytes_per_actor"' \
  "$TEST_TMPDIR/scale.jsonl"
for system in troupe caf; do
  grep -q "\"curve\": \"skynet\", \"x\": 1000, .*\"system\": \"$system\", \"metric\": \"peak_live_actors\"" \
    "$TEST_TMPDIR/scale.jsonl"
done
grep -q '"curve": "oneway-peers", "x": 2, .*"metric": "throughput"' "$TEST_TMPDIR/scale.jsonl"
grep -q '"curve": "ask-load", "x": 50, .*"metric": "p99"' "$TEST_TMPDIR/scale.jsonl"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin if l.strip()]' <"$TEST_TMPDIR/scale.jsonl"
fi

# A wrong workload name is a clear error, not an empty table.
if "$suite" --only=no-such-workload 2>/dev/null; then
  echo "an unknown workload was accepted" >&2
  exit 1
fi
echo "suite_test: all workloads ran on both systems, the remote ones also on the floor and troupe over TLS"
