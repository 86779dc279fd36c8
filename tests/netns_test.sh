#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, a node process in each,
# exchanging tells and asks across them (tests/netns_checks.cc does the
# checking). Needs root and ip (iproute2); without them it says why and
# skips, passing. The namespaces are named after this test's pid and are
# deleted on every exit path.
#
#   netns_test.sh <path of netns_checks> [its flags, e.g. --gtest_filter=...]
set -euo pipefail
checks="$1"
shift

skip() {
  echo "SKIPPED: $*"
  exit 0
}

(( EUID == 0 )) || skip "creating network namespaces needs root (this runs as uid $EUID)"
ip="$(command -v ip || true)"
[[ -n "$ip" ]] || skip "ip (iproute2) is not installed"

# Unlikely to be anyone's subnet; inside the namespaces it cannot clash
# with the host's anyway.
readonly ns_a="troupe-netns-a-$$"
readonly ns_b="troupe-netns-b-$$"
readonly addr_a="10.77.91.1"
readonly addr_b="10.77.91.2"

created=()
cleanup() {
  local ns
  # Deleting a namespace deletes its end of the veth pair, and so the pair.
  for ns in "${created[@]}"; do "$ip" netns delete "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! why="$("$ip" netns add "$ns_a" 2>&1)"; then
  skip "ip netns add failed: $why"
fi
created+=("$ns_a")
"$ip" netns add "$ns_b"
created+=("$ns_b")

# Both ends are created inside their namespaces: nothing appears in the
# host's.
"$ip" link add veth-a netns "$ns_a" type veth peer name veth-b netns "$ns_b"
"$ip" -n "$ns_a" addr add "$addr_a/24" dev veth-a
"$ip" -n "$ns_b" addr add "$addr_b/24" dev veth-b
"$ip" -n "$ns_a" link set veth-a up
"$ip" -n "$ns_b" link set veth-b up
"$ip" -n "$ns_a" link set lo up
"$ip" -n "$ns_b" link set lo up
echo "netns_test: $ns_a ($addr_a) <-veth-> $ns_b ($addr_b)"

TROUPE_IP="$ip" TROUPE_NETNS_A="$ns_a" TROUPE_NETNS_B="$ns_b" \
  TROUPE_NETNS_ADDR_A="$addr_a" TROUPE_NETNS_ADDR_B="$addr_b" "$checks" "$@"
