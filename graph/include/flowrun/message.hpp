// What flows along the graph's edges: an envelope the runtime understands around a
// payload it does not. The runtime never looks inside a Payload; stages define their
// own payload types (an encoded sample, a decoded image, a batch) and name their
// kinds on their ports.
//
// Ordering: every edge carries a stream whose `seq` numbers run 0, 1, 2, ... without
// gaps. Sources number their output; per-item (map) stages keep the number of the
// item they were given, turning a dropped item into a Skip so the numbering stays
// whole; ordered stages number what they emit. That is what lets the runtime put
// items back in order before an ordered stage, whatever the thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace flowrun {

class Payload {
 public:
  virtual ~Payload() = default;
  // One line for logs and the `collect` stage, e.g. "image 32x32x3".
  virtual std::string describe() const { return "payload"; }
};

enum class Signal : std::uint8_t {
  Data,      // carries a payload
  Skip,      // an item that was dropped (e.g. a corrupt file): keeps the numbering whole
  EpochEnd,  // all items of `epoch` came before this one
  End,       // last message of the stream
};

const char* signal_name(Signal signal);

// Keeps an item counted as "in flight" against the prefetch bound while any copy of
// the message (or anything built from it, such as a batch) is alive. Opaque to stages.
using Lease = std::shared_ptr<const void>;

struct Message {
  std::uint64_t seq = 0;    // position in this edge's stream
  std::uint64_t epoch = 0;  // epoch the item belongs to
  std::uint64_t index = 0;  // dataset index of a sample, step of a batch: keys per-item randomness
  Signal signal = Signal::Data;
  int port = 0;             // input port it arrived on (set by the runtime)
  std::shared_ptr<const Payload> payload;
  Lease lease;

  bool is_data() const { return signal == Signal::Data; }

  // The payload as the type a stage expects; a wrong type is a wiring bug the
  // builder's kind check should have caught, so it throws with both type names.
  template <typename T>
  const T& as() const {
    const T* typed = dynamic_cast<const T*>(payload.get());
    if (!typed) {
      throw std::logic_error(std::string("message payload is ") +
                             (payload ? typeid(*payload).name() : "empty") + ", expected " + typeid(T).name());
    }
    return *typed;
  }
};

}  // namespace flowrun
