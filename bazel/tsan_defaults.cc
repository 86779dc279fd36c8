// ThreadSanitizer defaults for every binary built with --config=tsan, linked in
// through --custom_malloc (it defines no allocator, so the system malloc stays).
// Compiled into the binary, they hold for tests and for `bazel run` alike.

extern "C" {

// Stop at the first report, so a race fails its test.
const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1";
}

// moodycamel ConcurrentQueue publishes the blocks it reuses with
// std::atomic_thread_fence, which TSan does not model, so moving an item into
// a reused block looks like a race with the consumer that last emptied it.
// Only reports with a ConcurrentQueue frame in a stack are suppressed: a race
// on an item after it left the queue is still reported.
//
// absl::Status drops its last reference to a message inside Debian's
// uninstrumented libabsl_status, so TSan sees the delete but not the atomic
// count before it: a thread that read the message and one that dropped the
// last copy look like a race (docs/net-io.md, "Sanitizer notes"). Only
// reports with that function in a stack are suppressed.
const char* __tsan_default_suppressions() {
  return "race:moodycamel::ConcurrentQueue\n"
         "race:Status::UnrefNonInlined\n";
}

}  // extern "C"
