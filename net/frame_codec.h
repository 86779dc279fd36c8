// Building and reading the Cap'n Proto message of one frame.
//
// WithFrame fills a Frame into a builder whose first segment is a
// per-thread scratch buffer (no allocation for ordinary messages) and hands
// it on as a FrameWriter, to be serialized where the frame goes; BuildFrame
// serializes it into one OutFrame. ReadFrame checks the
// payload's size and hands a FlatArrayMessageReader, with the node's
// limits, to `use`; Cap'n Proto's own errors (a bad segment table, pointers
// out of bounds, limits passed) become InvalidArgument.
//
// Who may call what: any thread.

#ifndef TROUPE_NET_FRAME_CODEC_H_
#define TROUPE_NET_FRAME_CODEC_H_

#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "capnp/message.h"
#include "capnp/serialize.h"
#include "kj/exception.h"
#include "kj/io.h"
#include "net/io/frame.h"
#include "net/wire/envelope.capnp.h"

namespace troupe::net {

// A zeroed first segment for this thread's builders, or an empty one while
// the thread's is in use (then the builder allocates).
class ScratchSegment {
 public:
  ScratchSegment();
  ~ScratchSegment();
  ScratchSegment(const ScratchSegment&) = delete;
  ScratchSegment& operator=(const ScratchSegment&) = delete;
  kj::ArrayPtr<capnp::word> words() { return words_; }

 private:
  kj::ArrayPtr<capnp::word> words_;
  bool owned_ = false;
};

// A built message as a frame to write in place (Connection::SendInPlace):
// its serialized form, Cap'n Proto's standard one (the segment table, then
// the segments, one memcpy each), is written straight to where the frame
// goes.
class MessageFrameWriter final : public FrameWriter {
 public:
  explicit MessageFrameWriter(capnp::MessageBuilder& builder);
  size_t payload_size() const override { return bytes_; }
  void Write(uint8_t* payload) const override;

 private:
  // Valid while the builder is not changed.
  const kj::ArrayPtr<const kj::ArrayPtr<const capnp::word>> segments_;
  size_t bytes_ = 0;
};

// Builds a frame with `fill(wire::Frame::Builder)` (returning a Status, as
// for BuildFrame) and hands it to `use(FrameWriter&)`, which returns a
// Status, while the message lives. Cap'n Proto's errors while filling
// become InvalidArgument; `use` runs only for a frame that was built, and
// outside the Cap'n Proto exception guard, so what it throws is its own.
// `used` tells the caller which of the two the result came from.
template <class Fill, class Use>
absl::Status WithFrame(Fill&& fill, Use&& use, bool& used) {
  used = false;
  ScratchSegment scratch;
  capnp::MallocMessageBuilder builder(scratch.words());
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] { status = fill(builder.initRoot<wire::Frame>()); });
  KJ_IF_MAYBE(e, error) {
    return absl::InvalidArgumentError(absl::StrCat("could not encode a frame: ", e->getDescription().cStr()));
  }
  if (!status.ok()) return status;
  MessageFrameWriter writer(builder);
  used = true;
  return use(static_cast<FrameWriter&>(writer));
}

// `fill(wire::Frame::Builder)` returns a Status; its error comes back
// instead of a frame.
template <class Fill>
absl::StatusOr<OutFrame> BuildFrame(Fill&& fill) {
  OutFrame out;
  bool built = false;
  absl::Status status = WithFrame(
      std::forward<Fill>(fill),
      [&](FrameWriter& frame) {
        out = frame.TakeOutFrame();
        return absl::OkStatus();
      },
      built);
  if (!status.ok()) return status;
  return out;
}

// Reads one received payload: `use(wire::Frame::Reader)` runs inside the
// reader's lifetime and returns a Status.
template <class Use>
absl::Status ReadFrame(absl::Span<const uint8_t> payload, const capnp::ReaderOptions& options, Use&& use) {
  if (payload.size() % sizeof(capnp::word) != 0 || payload.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame of ", payload.size(), " bytes is not a Cap'n Proto message (whole 8-byte words)"));
  }
  absl::Status status;
  kj::Maybe<kj::Exception> error = kj::runCatchingExceptions([&] {
    kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(payload.data()),
                                          payload.size() / sizeof(capnp::word));
    capnp::FlatArrayMessageReader reader(words, options);
    status = use(reader.getRoot<wire::Frame>());
  });
  KJ_IF_MAYBE(e, error) {
    return absl::InvalidArgumentError(absl::StrCat("malformed frame: ", e->getDescription().cStr()));
  }
  return status;
}

}  // namespace troupe::net

#endif  // TROUPE_NET_FRAME_CODEC_H_
