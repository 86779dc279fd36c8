// Namespaces: the fixture of the checks that tests/netns_test.sh runs. The
// script creates three network namespaces on one bridge and runs a checks
// binary with their names and addresses in the environment:
//
//   TROUPE_IP                      path of ip (iproute2)
//   TROUPE_NETNS_A, _B, _C         namespace names
//   TROUPE_NETNS_ADDR_A, _B, _C    the address of each on the bridge
//   TROUPE_NFT, TROUPE_IPTABLES    paths of nft and iptables, empty if missing
//
// Each node process runs in one namespace ("ip netns exec"), so everything
// between nodes crosses the bridge, as between machines: nothing of one
// namespace is reachable over another's loopback.

#ifndef TROUPE_TESTS_NAMESPACES_H_
#define TROUPE_TESTS_NAMESPACES_H_

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/node_processes.h"

namespace troupe::tests {

inline std::string Env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v != nullptr ? v : "";
}

class Namespaces : public NodeProcesses {
 protected:
  void SetUp() override {
    ip_ = Env("TROUPE_IP");
    for (const char* host : {"A", "B", "C"}) {
      ns_.push_back(Env(std::string("TROUPE_NETNS_") + host));
      addr_.push_back(Env(std::string("TROUPE_NETNS_ADDR_") + host));
      ASSERT_FALSE(ns_.back().empty() || addr_.back().empty())
          << "run by tests/netns_test.sh, which sets up the namespaces";
    }
    ASSERT_FALSE(ip_.empty());
  }

  // The prefix that runs a command in host i's namespace.
  std::vector<std::string> In(int i) const { return {ip_, "netns", "exec", ns_[i]}; }

  // Counter nodes a, b and c on 0.0.0.0:7000, one in each namespace, as in
  // docs/cluster.md: each advertises its namespace's address, and all three
  // are listed in --cluster. `c_flags` are c's, such as its workload. With
  // `tls_dir`, each runs over TLS with its certificate there
  // (MakeNodeCerts) instead of the shared secret. Each is ready (hosts
  // entities) when this returns.
  //
  // `etcd`: the members register in the etcd at that address ("host:port")
  // instead, each with `every` among its flags.
  void StartThree(const std::vector<std::string>& c_flags, ChildProcess** a, ChildProcess** b, ChildProcess** c,
                  const std::string& tls_dir = "", const std::string& etcd = "",
                  const std::vector<std::string>& every = {}) {
    std::vector<std::string> at;
    for (const std::string& addr : addr_) at.push_back(addr + ":7000");
    const char* names[] = {"a", "b", "c"};
    std::vector<std::vector<std::string>> extra, prefixes;
    for (int i = 0; i < 3; ++i) {
      std::vector<std::string> flags = {"--advertise=" + at[i]};
      flags.insert(flags.end(), every.begin(), every.end());
      if (i == 2) flags.insert(flags.end(), c_flags.begin(), c_flags.end());
      if (!tls_dir.empty()) {
        std::vector<std::string> tls = TlsFlags(tls_dir, names[i]);
        flags.insert(flags.end(), tls.begin(), tls.end());
      }
      extra.push_back(flags);
      prefixes.push_back(In(i));
    }
    std::vector<ChildProcess*> n =
        StartCluster({"a", "b", "c"}, {"0.0.0.0:7000", "0.0.0.0:7000", "0.0.0.0:7000"},
                     etcd.empty() ? StaticCluster(at) : "etcd://" + etcd, extra, prefixes);
    *a = n[0];
    *b = n[1];
    *c = n[2];
    ASSERT_TRUE(*a != nullptr && *b != nullptr && *c != nullptr);
  }

  std::string ip_;
  std::vector<std::string> ns_, addr_;
};

}  // namespace troupe::tests

#endif  // TROUPE_TESTS_NAMESPACES_H_
