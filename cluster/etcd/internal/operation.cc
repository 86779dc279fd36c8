#include "cluster/etcd/internal/operation.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace troupe::cluster::etcd::internal {
namespace {

// Debian's Abseil has its own string_view, not std::string_view.
absl::string_view View(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusCode FromGrpcCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return absl::StatusCode::kOk;
    case grpc::StatusCode::CANCELLED:
      return absl::StatusCode::kCancelled;
    case grpc::StatusCode::UNKNOWN:
      return absl::StatusCode::kUnknown;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::StatusCode::kInvalidArgument;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return absl::StatusCode::kDeadlineExceeded;
    case grpc::StatusCode::NOT_FOUND:
      return absl::StatusCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return absl::StatusCode::kAlreadyExists;
    case grpc::StatusCode::PERMISSION_DENIED:
      return absl::StatusCode::kPermissionDenied;
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::StatusCode::kUnauthenticated;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return absl::StatusCode::kResourceExhausted;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return absl::StatusCode::kFailedPrecondition;
    case grpc::StatusCode::ABORTED:
      return absl::StatusCode::kAborted;
    case grpc::StatusCode::OUT_OF_RANGE:
      return absl::StatusCode::kOutOfRange;
    case grpc::StatusCode::UNIMPLEMENTED:
      return absl::StatusCode::kUnimplemented;
    case grpc::StatusCode::INTERNAL:
      return absl::StatusCode::kInternal;
    case grpc::StatusCode::UNAVAILABLE:
      return absl::StatusCode::kUnavailable;
    case grpc::StatusCode::DATA_LOSS:
      return absl::StatusCode::kDataLoss;
    default:
      return absl::StatusCode::kUnknown;
  }
}

Operation::Operation(std::string_view rpc, std::string subject, std::string_view address)
    : name_(absl::StrCat("etcd ", View(rpc), " of ", subject, " at ", View(address))) {}

std::string Operation::KeySubject(std::string_view key) { return absl::StrCat("key \"", absl::CHexEscape(View(key)), "\""); }

std::string Operation::PrefixSubject(std::string_view prefix) {
  return absl::StrCat("prefix \"", absl::CHexEscape(View(prefix)), "\"");
}

std::string Operation::LeaseSubject(int64_t lease) { return absl::StrCat("lease ", lease); }

absl::Status Operation::Error(absl::StatusCode code, std::string_view what) const {
  return absl::Status(code, absl::StrCat(name_, ": ", View(what)));
}

absl::Status Operation::Error(const grpc::Status& status) const {
  const absl::StatusCode code = FromGrpcCode(status.error_code());
  const std::string& message = status.error_message();
  return Error(code, message.empty() ? absl::StatusCodeToString(code) : message);
}

void Configure(grpc::ClientContext* context, absl::Time deadline, bool wait_for_ready) {
  if (deadline != absl::InfiniteFuture()) context->set_deadline(absl::ToChronoTime(deadline));
  context->set_wait_for_ready(wait_for_ready);
}

}  // namespace troupe::cluster::etcd::internal
