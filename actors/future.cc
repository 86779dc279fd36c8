#include "actors/future.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace troupe::internal {

ContinuationContext*& CurrentContext() noexcept {
  // Per thread, not global: set by the actor layer around each actor turn.
  thread_local ContinuationContext* current = nullptr;
  return current;
}

absl::Status ExceptionStatus(std::exception_ptr error, std::string_view where) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(std::string(where), " threw: ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(std::string(where), " threw an exception not derived from std::exception"));
  }
}

absl::Status CheckMayBlock(const char* what) {
  if (CurrentContext() == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      what, " called inside an actor: a handler must never block its worker; use Then or co_await"));
}

}  // namespace troupe::internal
