#!/usr/bin/env bash
# Three network namespaces on one bridge (a small LAN, as three machines
# would be), a node process in each, exchanging tells and asks across them
# (tests/netns_checks.cc does the checking; tests/netns_partition_checks.cc
# cuts one namespace off with nft or iptables, given to it as TROUPE_NFT and
# TROUPE_IPTABLES, and skips without either). Needs root and ip (iproute2);
# without them it says why and skips, passing. The namespaces are named
# after this test's pid and are deleted on every exit path, and their
# firewall rules with them.
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
readonly subnet="10.77.91"
readonly lan="troupe-netns-lan-$$"
readonly hosts=(a b c)

created=()
cleanup() {
  local ns
  # Deleting a namespace deletes the veth ends in it, and so the pairs.
  for ns in "${created[@]}"; do "$ip" netns delete "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! why="$("$ip" netns add "$lan" 2>&1)"; then
  skip "ip netns add failed: $why"
fi
created+=("$lan")
# Entering a namespace remounts /sys, which fails where / is not a mount
# point (a chroot): the machine cannot host the test, as without root.
if ! why="$("$ip" -n "$lan" link show 2>&1)"; then
  skip "cannot enter a network namespace here: $why"
fi
# The bridge lives in a namespace of its own: nothing appears in the host's.
"$ip" -n "$lan" link add lan type bridge
"$ip" -n "$lan" link set lan up

env=(TROUPE_IP="$ip" TROUPE_NFT="$(command -v nft || true)" TROUPE_IPTABLES="$(command -v iptables || true)")
for i in "${!hosts[@]}"; do
  host="${hosts[$i]}"
  ns="troupe-netns-$host-$$"
  addr="$subnet.$((i + 1))"
  "$ip" netns add "$ns"
  created+=("$ns")
  "$ip" link add eth0 netns "$ns" type veth peer name "port-$host" netns "$lan"
  "$ip" -n "$lan" link set "port-$host" master lan
  "$ip" -n "$lan" link set "port-$host" up
  "$ip" -n "$ns" addr add "$addr/24" dev eth0
  "$ip" -n "$ns" link set eth0 up
  "$ip" -n "$ns" link set lo up
  upper="${host^^}"
  env+=("TROUPE_NETNS_$upper=$ns" "TROUPE_NETNS_ADDR_$upper=$addr")
  echo "netns_test: $ns: $addr"
done

env "${env[@]}" "$checks" "$@"
