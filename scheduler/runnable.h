// A Runnable is a unit of work the scheduler runs on one of its threads: in
// practice an actor with messages in its mailbox.
//
// The scheduler holds Runnables by raw pointer and never owns them: whoever
// schedules a Runnable keeps it alive until its Run() has returned (an actor
// holds a reference to itself while it is scheduled). A Runnable is in at
// most one queue at a time, and Run() is never called on two threads at once
// for the same Runnable: the mailbox schedules an actor once when it goes
// from empty to non-empty, and the actor reschedules itself only from its own
// Run().

#ifndef TROUPE_SCHEDULER_RUNNABLE_H_
#define TROUPE_SCHEDULER_RUNNABLE_H_

namespace troupe {

class Runnable {
 public:
  // Runs one turn of work. Must not throw: user code is wrapped by the actor
  // layer, which turns exceptions into the actor's exit reason.
  virtual void Run() noexcept = 0;

 protected:
  ~Runnable() = default;
};

}  // namespace troupe

#endif  // TROUPE_SCHEDULER_RUNNABLE_H_
