#include "actors/future.h"

#include "absl/strings/str_cat.h"

namespace troupe::internal {

ContinuationContext*& CurrentContext() noexcept {
  // Per thread, not global: set by the actor layer around each actor turn.
  thread_local ContinuationContext* current = nullptr;
  return current;
}

absl::Status CheckMayBlock(const char* what) {
  if (CurrentContext() == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " called inside an actor: a handler must never block its worker; use Then or co_await"));
}

}  // namespace troupe::internal
