#include "actors/dead_letters.h"

#include <algorithm>
#include <utility>

#include "actors/actor_box.h"

namespace troupe {

DeadLetterSubscription DeadLetters::Subscribe(Callback fn, DeadLetterOptions options) {
  auto s = std::make_shared<Subscriber>();
  s->fn = std::move(fn);
  s->max_per_second = std::max(1, options.max_per_second);
  std::lock_guard<std::mutex> lock(mu_);
  s->id = next_id_++;
  list_.push_back(s);
  subscribers_.fetch_add(1, std::memory_order_relaxed);
  return DeadLetterSubscription{s->id};
}

bool DeadLetters::Unsubscribe(DeadLetterSubscription id) {
  std::shared_ptr<Subscriber> gone;  // destroyed after the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(list_.begin(), list_.end(), [&](const auto& s) { return s->id == id.value; });
  if (it == list_.end()) return false;
  gone = std::move(*it);
  list_.erase(it);
  subscribers_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void DeadLetters::Report(internal::ActorCell* target, std::string_view type, const absl::Status& reason) noexcept {
  if (subscribers_.load(std::memory_order_relaxed) == 0) return;
  if (type == internal::kTypeName<DeadLetter>) return;
  std::vector<std::shared_ptr<Subscriber>> now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    now = list_;
  }
  const absl::Time t = now_();
  for (const std::shared_ptr<Subscriber>& s : now) {
    uint64_t suppressed;
    {
      std::lock_guard<std::mutex> lock(s->mu);
      if (t - s->window_start >= absl::Seconds(1)) {
        s->window_start = t;
        s->in_window = 0;
      }
      if (s->in_window >= s->max_per_second) {
        ++s->suppressed;
        continue;
      }
      ++s->in_window;
      suppressed = std::exchange(s->suppressed, 0);
    }
    DeadLetter letter;
    if (target != nullptr) {
      target->Retain();
      letter.target = ActorRef::Adopt(target);
    }
    letter.message_type = std::string(type);
    // A copy of its own: the report may travel to another thread (an actor
    // subscriber), and the caller's status must not share its text with it.
    letter.reason = absl::Status(reason.code(), std::string(reason.message()));
    letter.suppressed = suppressed;
    bool keep = true;
    try {
      internal::ScopedNoContext outside;
      keep = s->fn(letter);
    } catch (...) {
      // A subscriber that throws is a bug of its own; the dead letter
      // still counts, and nothing else is disturbed.
    }
    if (!keep) Unsubscribe(DeadLetterSubscription{s->id});
  }
}

}  // namespace troupe
