#include "tests/node_processes.h"

#include <unistd.h>

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

std::string NodeProcesses::StartCounterNode(const std::string& name, const std::string& listen,
                                            const std::vector<std::string>& extra, ChildProcess** out,
                                            const std::vector<std::string>& prefix) {
  std::vector<std::string> argv = {Runfile("examples/counter_service"), "--listen=" + listen, "--name=" + name,
                                   "--shards=2", kSecret, "--workers=1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess* p = Start(name, argv, prefix);
  *out = p;
  if (p == nullptr) return "";
  const std::string address = AddressIn(Line(p, name + ": listening on "));
  if (Line(p, name + ": ready").empty()) return "";
  return address;
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

}  // namespace troupe::tests
