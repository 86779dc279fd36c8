#include "cluster/etcd/etcd_client.h"

#include <grpcpp/channel.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "cluster/etcd/etcd.grpc.pb.h"
#include "cluster/etcd/internal/keep_alive_call.h"
#include "cluster/etcd/internal/messages.h"
#include "cluster/etcd/internal/operation.h"
#include "cluster/etcd/internal/stream_loop.h"
#include "cluster/etcd/internal/watch_call.h"

namespace troupe::cluster::etcd {

using internal::Operation;

std::string PrefixRangeEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    const unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

namespace {

// etcd refuses an empty key; "\0" to "\0" is its way of saying every key.
std::string RangeStart(std::string_view prefix) {
  return prefix.empty() ? std::string(1, '\0') : std::string(prefix);
}

int64_t WholeSeconds(absl::Duration d) {
  return std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1))));
}

}  // namespace

struct EtcdClient::Impl {
  explicit Impl(EtcdClientOptions o) : options(std::move(o)) {
    grpc::ChannelArguments args;
    const int max_backoff_ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(1000, max_backoff_ms));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff_ms);
    channel = grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args);
    kv = etcdserverpb::KV::NewStub(channel);
    watch = etcdserverpb::Watch::NewStub(channel);
    lease = etcdserverpb::Lease::NewStub(channel);
  }

  // One unary call: `rpc(context, &response)` with this client's settings.
  template <typename Response, typename Rpc>
  absl::StatusOr<Response> Call(const Operation& op, absl::Time deadline, Rpc rpc) {
    grpc::ClientContext context;
    internal::Configure(&context, deadline, options.wait_for_connection);
    Response response;
    const grpc::Status status = rpc(&context, &response);
    if (!status.ok()) return op.Error(status);
    return response;
  }

  absl::Status RefuseOnLoopThread(const Operation& op) const {
    if (std::this_thread::get_id() != loop.thread_id()) return absl::OkStatus();
    return op.Error(absl::StatusCode::kFailedPrecondition,
                    "called from one of the client's callbacks, whose thread would have to deliver the answer");
  }

  const EtcdClientOptions options;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  // Last: destroyed first, so streams end before the stubs go.
  internal::StreamLoop loop;
};

EtcdClient::EtcdClient(EtcdClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

EtcdClient::~EtcdClient() = default;

const std::string& EtcdClient::address() const { return impl_->options.address; }

absl::StatusOr<Lease> EtcdClient::Grant(absl::Duration ttl, absl::Time deadline) {
  const Operation op("LeaseGrant", absl::StrCat("a lease of ", absl::FormatDuration(ttl)), address());
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(WholeSeconds(ttl));
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> response =
      impl_->Call<etcdserverpb::LeaseGrantResponse>(op, deadline, [&](auto* context, auto* out) {
        return impl_->lease->LeaseGrant(context, request, out);
      });
  if (!response.ok()) return response.status();
  if (!response->error().empty()) return op.Error(absl::StatusCode::kUnknown, response->error());
  return Lease{.id = response->id(), .ttl = absl::Seconds(response->ttl())};
}

absl::Status EtcdClient::Revoke(LeaseId lease, absl::Time deadline) {
  const Operation op("LeaseRevoke", Operation::LeaseSubject(lease), address());
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease);
  return impl_
      ->Call<etcdserverpb::LeaseRevokeResponse>(
          op, deadline, [&](auto* context, auto* out) { return impl_->lease->LeaseRevoke(context, request, out); })
      .status();
}

absl::StatusOr<absl::Duration> EtcdClient::TimeToLive(LeaseId lease, absl::Time deadline) {
  const Operation op("LeaseTimeToLive", Operation::LeaseSubject(lease), address());
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(lease);
  absl::StatusOr<etcdserverpb::LeaseTimeToLiveResponse> response =
      impl_->Call<etcdserverpb::LeaseTimeToLiveResponse>(op, deadline, [&](auto* context, auto* out) {
        return impl_->lease->LeaseTimeToLive(context, request, out);
      });
  if (!response.ok()) return response.status();
  // etcd answers TTL -1 for a lease it does not have.
  if (response->ttl() < 0) return op.Error(absl::StatusCode::kNotFound, "the lease expired or was revoked");
  return absl::Seconds(response->ttl());
}

absl::StatusOr<std::unique_ptr<KeepAlive>> EtcdClient::StartKeepAlive(LeaseId lease, KeepAliveOptions options,
                                                                      absl::Time deadline) {
  Operation op("LeaseKeepAlive", Operation::LeaseSubject(lease), address());
  if (absl::Status refused = impl_->RefuseOnLoopThread(op); !refused.ok()) return refused;
  auto call = std::make_shared<internal::KeepAliveCall>(&impl_->loop, std::move(op), impl_->options.wait_for_connection,
                                                        lease, std::move(options));
  call->Begin(impl_->lease.get());
  if (absl::Status started = call->WaitStarted(deadline); !started.ok()) {
    call->Close();
    return started;
  }
  return std::unique_ptr<KeepAlive>(new KeepAlive(lease, std::move(call)));
}

absl::StatusOr<int64_t> EtcdClient::Put(std::string_view key, std::string_view value, LeaseId lease,
                                        absl::Time deadline) {
  const Operation op("Put", Operation::KeySubject(key), address());
  etcdserverpb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  absl::StatusOr<etcdserverpb::PutResponse> response = impl_->Call<etcdserverpb::PutResponse>(
      op, deadline, [&](auto* context, auto* out) { return impl_->kv->Put(context, request, out); });
  if (!response.ok()) return response.status();
  return response->header().revision();
}

absl::StatusOr<GetResult> EtcdClient::Get(std::string_view key, absl::Time deadline) {
  const Operation op("Range", Operation::KeySubject(key), address());
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(key));
  absl::StatusOr<etcdserverpb::RangeResponse> response = impl_->Call<etcdserverpb::RangeResponse>(
      op, deadline, [&](auto* context, auto* out) { return impl_->kv->Range(context, request, out); });
  if (!response.ok()) return response.status();
  GetResult result;
  result.revision = response->header().revision();
  if (response->kvs_size() > 0) result.kv = internal::FromProto(response->kvs(0));
  return result;
}

absl::StatusOr<PrefixResult> EtcdClient::GetPrefix(std::string_view prefix, absl::Time deadline) {
  const Operation op("Range", Operation::PrefixSubject(prefix), address());
  etcdserverpb::RangeRequest request;
  request.set_key(RangeStart(prefix));
  request.set_range_end(PrefixRangeEnd(prefix));
  absl::StatusOr<etcdserverpb::RangeResponse> response = impl_->Call<etcdserverpb::RangeResponse>(
      op, deadline, [&](auto* context, auto* out) { return impl_->kv->Range(context, request, out); });
  if (!response.ok()) return response.status();
  PrefixResult result;
  result.revision = response->header().revision();
  result.kvs.reserve(static_cast<size_t>(response->kvs_size()));
  for (const etcdserverpb::KeyValue& kv : response->kvs()) result.kvs.push_back(internal::FromProto(kv));
  return result;
}

absl::StatusOr<DeleteResult> EtcdClient::Delete(std::string_view key, absl::Time deadline) {
  const Operation op("DeleteRange", Operation::KeySubject(key), address());
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(std::string(key));
  absl::StatusOr<etcdserverpb::DeleteRangeResponse> response = impl_->Call<etcdserverpb::DeleteRangeResponse>(
      op, deadline, [&](auto* context, auto* out) { return impl_->kv->DeleteRange(context, request, out); });
  if (!response.ok()) return response.status();
  return DeleteResult{.deleted = response->deleted() > 0, .revision = response->header().revision()};
}

namespace {

// What a put conditional on the key's revision did.
struct ConditionalPut {
  bool written = false;
  int64_t revision = 0;             // the store's, after the call
  std::optional<KeyValue> current;  // if !written: the key as it is
};

}  // namespace

// One Txn: put `value` (with `lease`) if the key's mod_revision is
// `expected`, or, for 0, if the key does not exist (its create_revision is
// 0 exactly then); otherwise read it.
template <class Impl>
absl::StatusOr<ConditionalPut> PutIfRevision(Impl& impl, const std::string& address, std::string_view key,
                                             std::string_view value, LeaseId lease, int64_t expected,
                                             absl::Time deadline) {
  const Operation op("Txn", Operation::KeySubject(key), address);
  etcdserverpb::TxnRequest request;
  etcdserverpb::Compare* compare = request.add_compare();
  compare->set_result(etcdserverpb::Compare::EQUAL);
  compare->set_key(std::string(key));
  if (expected == 0) {
    compare->set_target(etcdserverpb::Compare::CREATE);
    compare->set_create_revision(0);
  } else {
    compare->set_target(etcdserverpb::Compare::MOD);
    compare->set_mod_revision(expected);
  }
  etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
  put->set_key(std::string(key));
  put->set_value(std::string(value));
  put->set_lease(lease);
  request.add_failure()->mutable_request_range()->set_key(std::string(key));
  absl::StatusOr<etcdserverpb::TxnResponse> response = impl.template Call<etcdserverpb::TxnResponse>(
      op, deadline, [&](auto* context, auto* out) { return impl.kv->Txn(context, request, out); });
  if (!response.ok()) return response.status();
  ConditionalPut result;
  result.written = response->succeeded();
  result.revision = response->header().revision();
  if (!result.written && response->responses_size() > 0) {
    const etcdserverpb::RangeResponse& now = response->responses(0).response_range();
    // Empty if the key does not exist (a revision given for a key that
    // went); a transaction rules out its going between compare and read.
    if (now.kvs_size() > 0) result.current = internal::FromProto(now.kvs(0));
  }
  return result;
}

absl::StatusOr<CreateResult> EtcdClient::CreateIfAbsent(std::string_view key, std::string_view value, LeaseId lease,
                                                        absl::Time deadline) {
  absl::StatusOr<ConditionalPut> put = PutIfRevision(*impl_, address(), key, value, lease, 0, deadline);
  if (!put.ok()) return put.status();
  return CreateResult{.created = put->written, .revision = put->revision, .existing = std::move(put->current)};
}

absl::StatusOr<SwapResult> EtcdClient::PutIfUnchanged(std::string_view key, std::string_view value, int64_t expected,
                                                      absl::Time deadline) {
  absl::StatusOr<ConditionalPut> put = PutIfRevision(*impl_, address(), key, value, kNoLease, expected, deadline);
  if (!put.ok()) return put.status();
  return SwapResult{.written = put->written, .revision = put->revision, .current = std::move(put->current)};
}

absl::StatusOr<std::unique_ptr<Watch>> EtcdClient::WatchPrefix(std::string_view prefix, int64_t start_revision,
                                                               WatchCallbacks callbacks, absl::Time deadline) {
  Operation op("Watch", absl::StrCat(Operation::PrefixSubject(prefix), " from revision ", start_revision), address());
  if (absl::Status refused = impl_->RefuseOnLoopThread(op); !refused.ok()) return refused;
  auto call = std::make_shared<internal::WatchCall>(&impl_->loop, std::move(op), impl_->options.wait_for_connection,
                                                    std::move(callbacks));
  call->Begin(impl_->watch.get(), RangeStart(prefix), PrefixRangeEnd(prefix), start_revision);
  if (absl::Status started = call->WaitStarted(deadline); !started.ok()) {
    call->Close();
    return started;
  }
  return std::unique_ptr<Watch>(new Watch(std::move(call)));
}

KeepAlive::KeepAlive(LeaseId lease, std::shared_ptr<internal::KeepAliveCall> call)
    : lease_(lease), call_(std::move(call)) {}

KeepAlive::~KeepAlive() { call_->Close(); }

absl::Duration KeepAlive::ttl() const { return call_->ttl(); }

Watch::Watch(std::shared_ptr<internal::WatchCall> call) : call_(std::move(call)) {}

Watch::~Watch() { call_->Close(); }

}  // namespace troupe::cluster::etcd
