#include "cluster/etcd/etcd_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cluster/etcd/etcd_client.h"
#include "cluster/etcd/testdata/etcd_compaction.grpc.pb.h"
#include "cluster/etcd/testdata/etcd_compaction.pb.h"

namespace troupe::cluster::etcd {
namespace {

constexpr char kName[] = "troupe-test";
constexpr size_t kTailInErrors = 30;

std::string EtcdBinary() {
  const char* from_env = std::getenv("TROUPE_ETCD");
  if (from_env == nullptr || *from_env == '\0') return "/usr/bin/etcd";
  std::string path = from_env;
  // A runfiles path is relative to the test's working directory.
  if (path.front() != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) path = absl::StrCat(cwd, "/", path);
  }
  return path;
}

std::string MakeDataDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/etcd-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// Two loopback ports that are free now: both are bound at once, so they
// differ, then released for etcd. Another process could take one in
// between; nothing on a test machine binds loopback ports it did not ask
// the kernel for, so that does not happen in practice.
absl::StatusOr<std::pair<int, int>> TwoFreePorts() {
  int fds[2] = {-1, -1};
  int ports[2] = {0, 0};
  absl::Status status;
  for (int i = 0; i < 2 && status.ok(); ++i) {
    fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fds[i] < 0 || bind(fds[i], reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fds[i], reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = absl::InternalError(absl::StrCat("no free loopback port: ", std::strerror(errno)));
    } else {
      ports[i] = ntohs(addr.sin_port);
    }
  }
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
  if (!status.ok()) return status;
  return std::make_pair(ports[0], ports[1]);
}

}  // namespace

EtcdServer::EtcdServer() : binary_(EtcdBinary()), data_dir_(MakeDataDir()) {
  absl::StatusOr<std::pair<int, int>> ports = TwoFreePorts();
  if (ports.ok()) {
    client_address_ = absl::StrCat("127.0.0.1:", ports->first);
    peer_url_ = absl::StrCat("http://127.0.0.1:", ports->second);
  }
}

EtcdServer::~EtcdServer() {
  if (running()) Kill();
  if (!data_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }
}

absl::Status EtcdServer::Start() {
  if (running()) return absl::FailedPreconditionError("etcd is running already");
  if (data_dir_.empty()) return absl::InternalError("could not make a data directory for etcd");
  if (client_address_.empty()) return absl::InternalError("could not find free ports for etcd");
  const std::string client_url = absl::StrCat("http://", client_address_);
  const std::vector<std::string> argv = {
      binary_,
      absl::StrCat("--name=", kName),
      absl::StrCat("--data-dir=", data_dir_),
      absl::StrCat("--listen-client-urls=", client_url),
      absl::StrCat("--advertise-client-urls=", client_url),
      absl::StrCat("--listen-peer-urls=", peer_url_),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url_),
      absl::StrCat("--initial-cluster=", kName, "=", peer_url_),
      "--initial-cluster-state=new",
      // The default logger of etcd 3.4 (capnslog) warns that it is deprecated.
      "--logger=zap",
      "--log-outputs=stderr",
  };
  absl::StatusOr<std::unique_ptr<examples::ChildProcess>> child =
      examples::ChildProcess::Start("etcd", argv, /*echo=*/false);
  if (!child.ok()) return child.status();
  process_ = *std::move(child);
  absl::Status serving = WaitUntilServing(absl::Now() + kStartTimeout);
  if (!serving.ok()) {
    Kill();
    return absl::Status(serving.code(), absl::StrCat(serving.message(), "\netcd printed, last:\n",
                                                     absl::StrJoin(last_tail_, "\n")));
  }
  return absl::OkStatus();
}

absl::Status EtcdServer::WaitUntilServing(absl::Time deadline) {
  // The client waits for a connection within each Get, so this loop goes
  // round about once a second while etcd starts, and never spins.
  EtcdClient probe({.address = client_address_, .wait_for_connection = true,
                    .max_reconnect_backoff = absl::Milliseconds(100)});
  absl::Status last;
  while (absl::Now() < deadline) {
    if (process_->OutputEnded()) {
      return absl::UnavailableError(absl::StrCat("etcd exited while starting; the last Get said: ", last.ToString()));
    }
    absl::StatusOr<GetResult> got = probe.Get("troupe-test/ready", std::min(deadline, absl::Now() + absl::Seconds(1)));
    if (got.ok()) return absl::OkStatus();
    last = got.status();
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd did not serve within ", absl::FormatDuration(kStartTimeout), "; the last Get said: ",
                   last.ToString()));
}

std::string EtcdServer::Stop() {
  if (!running()) return "not running";
  process_->Signal(SIGTERM);
  bool clean = false;
  const std::string how = process_->WaitOrKill(absl::Now() + kStopTimeout, &clean);
  Reap(how.c_str());
  return how;
}

void EtcdServer::Kill() {
  if (!running()) return;
  bool clean = false;
  // A deadline now: SIGKILL at once, then reap.
  const std::string how = process_->WaitOrKill(absl::Now(), &clean);
  Reap(how.c_str());
}

void EtcdServer::Reap(const char* how) {
  last_tail_ = process_->Tail();
  last_tail_.push_back(absl::StrCat("(etcd ", how, ")"));
  if (last_tail_.size() > kTailInErrors) last_tail_.erase(last_tail_.begin(), last_tail_.end() - kTailInErrors);
  process_.reset();  // joins the output reader: the pipe has ended
}

absl::Status EtcdServer::Restart() {
  if (running()) Stop();
  return Start();
}

absl::Status EtcdServer::Compact(int64_t revision, absl::Time deadline) {
  grpc::TemplatedGenericStub<etcd_test::CompactionRequest, etcd_test::CompactionResponse> stub(
      grpc::CreateChannel(client_address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  etcd_test::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcd_test::CompactionResponse>> call =
      stub.PrepareUnaryCall(&context, "/etcdserverpb.KV/Compact", request, &cq);
  call->StartCall();
  etcd_test::CompactionResponse response;
  grpc::Status status;
  call->Finish(&response, &status, &response);
  void* tag = nullptr;
  bool ok = false;
  // The call's only operation; it completes by its deadline at the latest.
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) {
    return absl::UnknownError(absl::StrCat("etcd Compact to revision ", revision, ": ", status.error_message()));
  }
  return absl::OkStatus();
}

std::vector<std::string> EtcdServer::LogTail() const { return running() ? process_->Tail() : last_tail_; }

}  // namespace troupe::cluster::etcd
