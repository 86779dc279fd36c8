#include "tests/node_processes.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"

namespace troupe::tests {

std::string Runfile(const std::string& path) {
  char cwd[4096];
  // Tests run in the workspace's runfiles directory.
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return path;
  return std::string(cwd) + "/" + path;
}

std::string AddressIn(const std::string& line) {
  const std::string marker = "listening on ";
  const size_t at = line.find(marker);
  if (at == std::string::npos) return "";
  const size_t from = at + marker.size();
  return line.substr(from, line.find(' ', from) - from);
}

std::vector<std::string> FreeAddresses(int count) {
  absl::StatusOr<std::vector<int>> ports = examples::FreeLoopbackPorts(count);
  EXPECT_TRUE(ports.ok()) << ports.status();
  std::vector<std::string> out;
  if (ports.ok()) {
    for (int port : *ports) out.push_back("127.0.0.1:" + std::to_string(port));
  }
  return out;
}

std::string StaticCluster(const std::vector<std::string>& addresses) {
  std::string flag = "static:";
  for (size_t i = 0; i < addresses.size(); ++i) flag += (i > 0 ? "," : "") + addresses[i];
  return flag;
}

NodeProcesses::ChildProcess* NodeProcesses::Start(const std::string& name, const std::vector<std::string>& argv,
                                                  const std::vector<std::string>& prefix) {
  std::vector<std::string> all = prefix;
  all.insert(all.end(), argv.begin(), argv.end());
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(name, all, /*echo=*/true);
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return nullptr;
  children_.push_back(*std::move(child));
  return children_.back().get();
}

std::string NodeProcesses::Line(ChildProcess* p, const std::string& needle) {
  if (p == nullptr) return "";
  absl::StatusOr<std::string> line = p->WaitForLine(needle, absl::Now() + kWait);
  EXPECT_TRUE(line.ok()) << line.status();
  return line.ok() ? *line : "";
}

NodeProcesses::ChildProcess* NodeProcesses::StartCounterNode(const std::string& name, const std::string& listen,
                                                             const std::string& cluster,
                                                             const std::vector<std::string>& extra,
                                                             const std::vector<std::string>& prefix) {
  const bool tls = std::any_of(extra.begin(), extra.end(),
                               [](const std::string& flag) { return flag.starts_with("--tls_cert"); });
  std::vector<std::string> argv = {Runfile("examples/counter_service"), "--listen=" + listen, "--name=" + name,
                                   "--cluster=" + cluster, "--shards=16", "--workers=1", "--increments=0"};
  if (!tls) argv.push_back(kSecret);
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess* p = Start(name, argv, prefix);
  if (p == nullptr || Line(p, name + ": listening on ").empty()) return nullptr;
  return p;
}

std::vector<NodeProcesses::ChildProcess*> NodeProcesses::StartCluster(
    const std::vector<std::string>& names, const std::vector<std::string>& addresses, const std::string& cluster,
    const std::vector<std::vector<std::string>>& extra, const std::vector<std::vector<std::string>>& prefixes) {
  std::vector<ChildProcess*> out;
  for (size_t i = 0; i < names.size(); ++i) {
    out.push_back(StartCounterNode(names[i], addresses[i], cluster,
                                   i < extra.size() ? extra[i] : std::vector<std::string>{},
                                   i < prefixes.size() ? prefixes[i] : std::vector<std::string>{}));
  }
  for (ChildProcess* p : out) EXPECT_TRUE(Ready(p)) << (p != nullptr ? p->name() : "a node") << " is not ready";
  return out;
}

void NodeProcesses::ExpectWorkloadVerifies(const std::string& name, const std::string& peer, int nodes,
                                           const std::vector<std::string>& prefix) {
  ChildProcess* client = StartCounterClient(name, peer, {"--increments=300", "--keys=30"}, prefix);
  EXPECT_NE(Line(client, "workload: " + std::to_string(nodes) + " clients (1 on each of " + std::to_string(nodes) +
                             " nodes)"),
            "");
  // 300 increments over 30 keys from a client on each node: 10 x nodes a key.
  const std::string each = std::to_string(10 * nodes), sum = std::to_string(300 * nodes);
  EXPECT_NE(Line(client, "verified: 30 keys read back, each as expected (" + each + ".." + each + "); they sum to " +
                             sum + " = " + sum + " sent"),
            "");
  EXPECT_TRUE(ExitsCleanly(client));
}

bool NodeProcesses::Prints(ChildProcess* p, const std::string& needle, absl::Time deadline, size_t from) {
  return p != nullptr && p->WaitForLine(needle, deadline, from).ok();
}

bool NodeProcesses::Ready(ChildProcess* p) { return p != nullptr && !Line(p, p->name() + ": ready").empty(); }

NodeProcesses::ChildProcess* NodeProcesses::StartCounterClient(const std::string& name, const std::string& peer,
                                                               const std::vector<std::string>& flags,
                                                               const std::vector<std::string>& prefix) {
  const bool tls = std::any_of(flags.begin(), flags.end(),
                               [](const std::string& flag) { return flag.starts_with("--tls_cert"); });
  std::vector<std::string> argv = {Runfile("examples/counter_service"), "--peer=" + peer, "--workers=1"};
  if (!tls) {
    argv.push_back("--name=" + name);
    argv.push_back(kSecret);
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  return Start(name, argv, prefix);
}

bool NodeProcesses::ExitsCleanly(ChildProcess* p) {
  if (p == nullptr) return false;
  bool clean = false;
  const std::string how = p->WaitOrKill(absl::Now() + kWait, &clean);
  EXPECT_TRUE(clean) << p->name() << " " << how;
  return clean;
}

std::string NodeProcesses::Ended(ChildProcess* p) {
  if (p == nullptr) return "";
  bool clean = false;
  return p->WaitOrKill(absl::Now() + kWait, &clean);
}

std::string NodeProcesses::MakeCa(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp == nullptr) {
    ADD_FAILURE() << "TEST_TMPDIR is not set: run the test with bazel test";
    return "";
  }
  const std::string dir =
      std::string(tmp) + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/" + name;
  // --force: a CA left by an earlier run of this test is replaced.
  if (!ExitsCleanly(Start("make-certs-ca", {Runfile("tools/make-certs"), "ca", dir, "--force"}))) return "";
  return dir;
}

bool NodeProcesses::MakeNodeCerts(const std::string& dir, const std::vector<std::string>& names,
                                  const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {Runfile("tools/make-certs"), "node", dir};
  argv.insert(argv.end(), names.begin(), names.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ExitsCleanly(Start("make-certs-node", argv));
}

std::vector<std::string> NodeProcesses::TlsFlags(const std::string& dir, const std::string& name,
                                                 const std::string& ca_dir) {
  return {"--tls_cert=" + dir + "/" + name + ".pem", "--tls_key=" + dir + "/" + name + ".key",
          "--tls_ca=" + (ca_dir.empty() ? dir : ca_dir) + "/ca.pem"};
}

}  // namespace troupe::tests
