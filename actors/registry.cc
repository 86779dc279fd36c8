#include "actors/registry.h"

#include <utility>

#include "actors/system_core.h"

namespace troupe {

absl::Status Registry::Register(std::string_view name, const ActorRef& ref) {
  if (name.empty()) return absl::InvalidArgumentError("Register of an empty name");
  if (!ref) return absl::InvalidArgumentError(absl::StrCat("Register of '", std::string(name), "': an empty Ref"));
  if (ref.is_remote()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Register of '", std::string(name), "': the actor is on another node; register it there"));
  }
  if (&ref.cell()->core() != core_) {
    return absl::InvalidArgumentError(
        absl::StrCat("Register of '", std::string(name), "': the actor belongs to another ActorSystem"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, added] = names_.try_emplace(std::string(name), ref);
    if (!added) {
      if (it->second == ref) return absl::OkStatus();
      return absl::AlreadyExistsError(absl::StrCat("the name '", std::string(name), "' is registered for actor ",
                                                   it->second.id(), " (", std::string(it->second.cell()->type_name()),
                                                   ")"));
    }
    by_actor_[ref.cell()].push_back(std::string(name));
  }
  // See the header's Memory ordering: if the actor has already stopped, it
  // may have looked for names before this one was there.
  if (ref.cell()->MarkRegistered()) {
    Forget(ref.cell());
    return absl::UnavailableError(
        absl::StrCat("Register of '", std::string(name), "': actor ", ref.id(), " has stopped"));
  }
  return absl::OkStatus();
}

bool Registry::Unregister(std::string_view name) {
  ActorRef gone;  // released after the lock (declared first)
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(std::string(name));
  if (it == names_.end()) return false;
  gone = std::move(it->second);
  names_.erase(it);
  if (auto a = by_actor_.find(gone.cell()); a != by_actor_.end()) {
    std::erase(a->second, std::string(name));
    if (a->second.empty()) by_actor_.erase(a);
  }
  return true;
}

absl::StatusOr<ActorRef> Registry::LookupRef(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = names_.find(std::string(name));
  if (it == names_.end()) return absl::NotFoundError(absl::StrCat("no actor is registered as '", std::string(name), "'"));
  return it->second;
}

std::vector<std::string> Registry::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  out.reserve(names_.size());
  for (const auto& [name, ref] : names_) out.push_back(name);
  return out;
}

void Registry::Forget(internal::ActorCell* cell) {
  std::vector<ActorRef> gone;  // released after the lock (declared first)
  std::lock_guard<std::mutex> lock(mu_);
  auto a = by_actor_.find(cell);
  if (a == by_actor_.end()) return;
  for (const std::string& name : a->second) {
    if (auto it = names_.find(name); it != names_.end()) {
      gone.push_back(std::move(it->second));
      names_.erase(it);
    }
  }
  by_actor_.erase(a);
}

}  // namespace troupe
