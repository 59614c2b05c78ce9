#include "toy_stages.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>

#include "stages/core/number.hpp"
#include "stages/messages/batch.hpp"

namespace flowrun::testing {
namespace {

std::mutex g_stops_mutex;
std::vector<std::string> g_stops;

struct TrackedPayload : Payload {
  explicit TrackedPayload(std::int64_t v) : value(v) {
    LiveCounter& c = tracked_payloads();
    const std::int64_t now = ++c.live;
    std::int64_t seen = c.peak.load();
    while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
    }
  }
  ~TrackedPayload() override { --tracked_payloads().live; }
  std::string describe() const override { return "tracked " + std::to_string(value); }
  std::int64_t value;
};

// Emits count tracked payloads per epoch, then an epoch end.
class TrackedSource : public SourceStage {
 public:
  explicit TrackedSource(const StageArgs& a)
      : SourceStage(a), count_(static_cast<std::uint64_t>(a.params.integer("count"))),
        epochs_(static_cast<std::uint64_t>(a.params.integer("epochs"))) {}
  bool next(SourceItem& item) override {
    if (epoch_ == epochs_) return false;
    if (i_ == count_) {
      item.signal = Signal::EpochEnd;
      item.epoch = epoch_++;
      i_ = 0;
      return true;
    }
    item.epoch = epoch_;
    item.index = i_;
    item.payload = std::make_shared<TrackedPayload>(static_cast<std::int64_t>(i_));
    ++i_;
    return true;
  }

 private:
  std::uint64_t count_, epochs_, epoch_ = 0, i_ = 0;
};

struct TagPayload : Payload {
  TagPayload(std::string b, std::uint64_t r) : base(std::move(b)), random(r) {}
  std::string describe() const override { return base + " tag " + std::to_string(random); }
  std::string base;
  std::uint64_t random;
};

// Attaches a number drawn from the item's random stream; optional jitter so items
// finish out of order.
class RandomTag : public MapStage {
 public:
  explicit RandomTag(const StageArgs& a) : MapStage(a), jitter_us_(a.params.integer("jitter_us")) {}
  std::shared_ptr<const Payload> process(const Message& in) override {
    Rng rng = item_rng(in);
    const std::uint64_t value = rng.next_u64() % 1000000;
    if (jitter_us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(rng.below(jitter_us_)));
    return std::make_shared<TagPayload>(in.payload->describe(), value);
  }

 private:
  std::int64_t jitter_us_;
};

struct GroupPayload : Payload {
  std::vector<std::string> parts;
  std::string describe() const override {
    std::string s = "group[";
    for (const std::string& p : parts) s += p + ";";
    return s + "]";
  }
};

// Batches `size` items (holding their leases), flushing at epoch end; optional
// per-item sleep so that it is the slow consumer.
class Group : public OrderedStage {
 public:
  explicit Group(const StageArgs& a)
      : OrderedStage(a), size_(static_cast<std::size_t>(a.params.integer("size"))),
        sleep_ms_(a.params.number("sleep_ms")) {}
  void process(Message in, Emitter& out) override {
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms_));
    pending_.push_back(std::move(in));
    if (pending_.size() == size_) flush(out);
  }
  void epoch_end(int, std::uint64_t, Emitter& out) override { flush(out); }
  void finish(Emitter& out) override { flush(out); }

 private:
  void flush(Emitter& out) {
    if (pending_.empty()) return;
    auto group = std::make_shared<GroupPayload>();
    std::vector<Lease> leases;
    for (Message& m : pending_) {
      group->parts.push_back(m.payload->describe());
      leases.push_back(std::move(m.lease));
    }
    out.emit(0, group, pending_.front().epoch, step_++, combine_leases(std::move(leases)));
    pending_.clear();
  }
  std::size_t size_;
  double sleep_ms_;
  std::vector<Message> pending_;
  std::uint64_t step_ = 0;
};

struct BytesPayload : Payload {
  std::string describe() const override { return "bytes"; }
};

class BytesSource : public SourceStage {
 public:
  using SourceStage::SourceStage;
  bool next(SourceItem& item) override {
    if (n_ == 3) return false;
    item.index = n_++;
    item.payload = std::make_shared<BytesPayload>();
    return true;
  }

 private:
  std::uint64_t n_ = 0;
};

class Decode : public MapStage {
 public:
  using MapStage::MapStage;
  std::shared_ptr<const Payload> process(const Message& in) override { return in.payload; }
};

class Sink : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message, Emitter&) override {}
};

std::atomic<std::int64_t> g_items_counted{0};

// Counts the items that pass (test.count_items): how far the stream has got.
class CountItems : public MapStage {
 public:
  using MapStage::MapStage;
  std::shared_ptr<const Payload> process(const Message& in) override {
    ++g_items_counted;
    return in.payload;
  }
};

}  // namespace

// A sink on a thread of its own (test.progress_sink): for each item, how many items
// test.count_items had passed by then, and the thread it ran on.
class ProgressSink : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message in, Emitter&) override {
    seen.push_back({in.index, g_items_counted.load(), std::this_thread::get_id()});
  }
  std::vector<ProgressRecord> seen;
};

namespace {

// Records per port what it saw, emits "port:index" strings on its output.
class TwoInputs : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message in, Emitter& out) override {
    out.emit(0, std::make_shared<NumberPayload>(in.port * 1000 + static_cast<std::int64_t>(in.index)), in.epoch,
             seen_++);
  }

 private:
  std::uint64_t seen_ = 0;
};

class StopRecorder : public MapStage {
 public:
  using MapStage::MapStage;
  std::shared_ptr<const Payload> process(const Message& in) override { return in.payload; }
  void stop(StopReason reason) override {
    std::lock_guard<std::mutex> lock(g_stops_mutex);
    g_stops.push_back(node_id() + ":" + stop_reason_name(reason));
  }
};

// Records a fingerprint of every batch (without keeping the batch or its leases).
class BatchFingerprints : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message in, Emitter&) override {
    const auto& b = in.as<Batch>();
    BatchRecord r;
    r.epoch = b.epoch;
    r.size = b.images.size(0);
    r.pixel_sum = b.images.to(at::kDouble).sum().item<double>();
    for (std::int64_t i = 0; i < r.size; ++i) {
      r.labels.push_back(b.labels.data_ptr<std::int64_t>()[i]);
      r.indices.push_back(b.indices.data_ptr<std::int64_t>()[i]);
    }
    r.keys = b.keys;
    r.dtype = std::string(b.images.dtype().name());
    records_.push_back(std::move(r));  // ordered stages are called one at a time
  }
  std::vector<BatchRecord> records_;
};

// Keeps every batch it receives (the payloads, not their leases), for tests that
// compare tensors across pipelines.
class KeepBatches : public OrderedStage {
 public:
  using OrderedStage::OrderedStage;
  void process(Message in, Emitter&) override { kept_.push_back(in.payload); }
  std::vector<std::shared_ptr<const Payload>> kept_;
};

// Throws on its `after`-th data item: another stage failing mid-run.
class FailAfter : public OrderedStage {
 public:
  explicit FailAfter(const StageArgs& a) : OrderedStage(a), after_(a.params.integer("after")) {}
  void process(Message, Emitter&) override {
    if (++seen_ == after_) throw std::runtime_error("test.fail_after: failing on item " + std::to_string(seen_));
  }

 private:
  std::int64_t after_;
  std::int64_t seen_ = 0;
};

// What test.lender lends: its release wakes the lender (as a ModelSnapshot wakes
// the train stage).
struct LentItem : Payload {
  LentItem(std::int64_t v, std::function<void()> on_release) : value(v), on_release_(std::move(on_release)) {}
  ~LentItem() override { on_release_(); }
  std::string describe() const override { return "lent " + std::to_string(value); }
  std::int64_t value;

 private:
  std::function<void()> on_release_;
};

// Lends each input item on "lent" and takes the next one only once it came back;
// passes each item on "out" after its return, and finishes with "done" there: the
// train stage's protocol, without a model.
class Lender : public OrderedStage {
 public:
  explicit Lender(const StageArgs& a) : OrderedStage(a), control_(a.control) {}
  void process(Message in, Emitter& out) override {
    queue_.push_back(in.index);
    pump(out);
  }
  bool waiting() const override { return lent_ && !*lent_; }
  void woken(Emitter& out) override { pump(out); }
  void finish(Emitter& out) override { out.emit(1, std::make_shared<NumberPayload>(-1), 0, emitted_++); }

 private:
  void pump(Emitter& out) {
    while (!waiting()) {
      if (lent_) {
        out.emit(1, std::make_shared<NumberPayload>(lent_value_), 0, emitted_++);
        lent_.reset();
      }
      if (queue_.empty()) return;
      lent_value_ = static_cast<std::int64_t>(queue_.front());
      queue_.erase(queue_.begin());
      lent_ = std::make_shared<std::atomic<bool>>(false);
      auto released = lent_;
      RunControl* control = control_;
      const std::string id = node_id();
      out.emit(0, std::make_shared<LentItem>(lent_value_, [released, control, id] {
                 *released = true;
                 if (control) control->wake(id);
               }),
               0, lent_count_++);
    }
  }

  RunControl* control_;
  std::vector<std::uint64_t> queue_;
  std::shared_ptr<std::atomic<bool>> lent_;  // while an item is out: has it come back?
  std::int64_t lent_value_ = 0;
  std::uint64_t emitted_ = 0, lent_count_ = 0;
};

// Holds what it borrows for `hold` items (0: forever), sleeping sleep_ms per item.
class Borrower : public OrderedStage {
 public:
  explicit Borrower(const StageArgs& a)
      : OrderedStage(a), hold_(a.params.integer("hold")), sleep_ms_(a.params.number("sleep_ms")) {}
  void process(Message in, Emitter&) override {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(sleep_ms_));
    held_.push_back(std::move(in));
    if (hold_ > 0 && static_cast<std::int64_t>(held_.size()) >= hold_) held_.clear();
  }

 private:
  std::int64_t hold_;
  double sleep_ms_;
  std::vector<Message> held_;
};

template <typename StageType>
std::function<std::unique_ptr<Stage>(const StageArgs&)> factory() {
  return [](const StageArgs& a) { return std::make_unique<StageType>(a); };
}

PluginInfo make(const std::string& name, Role role, std::vector<PortSpec> in, std::vector<PortSpec> out,
                std::function<std::unique_ptr<Stage>(const StageArgs&)> create) {
  PluginInfo p;
  p.name = name;
  p.summary = "test stage " + name;
  p.role = role;
  p.inputs = std::move(in);
  p.outputs = std::move(out);
  p.create = std::move(create);
  return p;
}

}  // namespace

const std::vector<BatchRecord>& batch_records(Stage& stage) {
  return dynamic_cast<BatchFingerprints&>(stage).records_;
}

const std::vector<std::shared_ptr<const Payload>>& kept_batches(Stage& stage) {
  return dynamic_cast<KeepBatches&>(stage).kept_;
}

const std::vector<ProgressRecord>& progress_records(Stage& stage) { return dynamic_cast<ProgressSink&>(stage).seen; }

void reset_items_counted() { g_items_counted = 0; }

LiveCounter& tracked_payloads() {
  static LiveCounter counter;
  return counter;
}

std::vector<std::string> recorded_stops() {
  std::lock_guard<std::mutex> lock(g_stops_mutex);
  return g_stops;
}

void clear_recorded_stops() {
  std::lock_guard<std::mutex> lock(g_stops_mutex);
  g_stops.clear();
}

void register_toy_stages(Registry& r) {
  PluginInfo tracked = make("test.tracked_source", Role::Source, {}, {{"out", "tracked", "tracked items"}},
                            factory<TrackedSource>());
  tracked.params.integer("count", 100, "items per epoch").min(0);
  tracked.params.integer("epochs", 1, "epochs").min(1);
  r.add(std::move(tracked));

  PluginInfo tag = make("test.random_tag", Role::Map, {{"in", kAnyKind, "anything"}}, {{"out", "tagged", "tagged"}},
                        factory<RandomTag>());
  tag.params.integer("jitter_us", 0, "random sleep up to this many microseconds").min(0);
  r.add(std::move(tag));

  PluginInfo group = make("test.group", Role::Ordered, {{"in", kAnyKind, "anything"}}, {{"out", "group", "groups"}},
                          factory<Group>());
  group.params.integer("size", 4, "items per group").min(1);
  group.params.number("sleep_ms", 0.0, "sleep per item").min(0);
  r.add(std::move(group));

  PluginInfo fail = make("test.fail_after", Role::Ordered, {{"in", kAnyKind, "anything"}}, {}, factory<FailAfter>());
  fail.params.integer("after", 1, "throw on this data item").min(1);
  PluginInfo fail_apart = fail;  // the same sink on a thread of its own
  fail_apart.name = "test.fail_after_own_thread";
  fail_apart.own_thread = true;
  r.add(std::move(fail));
  r.add(std::move(fail_apart));
  r.add(make("test.bytes_source", Role::Source, {}, {{"out", "test/bytes", "encoded"}}, factory<BytesSource>()));
  r.add(make("test.decode", Role::Map, {{"in", "test/bytes", "encoded"}}, {{"out", "test/pixels", "decoded"}},
             factory<Decode>()));
  r.add(make("test.pixels_sink", Role::Ordered, {{"in", "test/pixels", "decoded"}}, {}, factory<Sink>()));
  PluginInfo two = make("test.two_inputs", Role::Ordered,
                        {{"a", kAnyKind, "first input"}, {"b", kAnyKind, "second input", false}},
                        {{"out", kNumberKind, "port*1000+index"}}, factory<TwoInputs>());
  r.add(std::move(two));
  PluginInfo needs = make("test.needs_params", Role::Map, {{"in", kAnyKind, "anything"}},
                          {{"out", kSameKind, "same"}}, factory<Decode>());
  needs.params.required("size", ParamType::Int, "a required integer").range(1, 100);
  needs.params.choice("mode", "fast", {"fast", "slow"}, "a choice");
  needs.params.number_list("mean", {0.5, 0.5, 0.5}, "three numbers").length(3).range(0, 1);
  needs.params.number("scale", 1.0, "a number").range(0, 1);
  r.add(std::move(needs));
  r.add(make("test.batch_fingerprints", Role::Ordered, {{"in", kBatchKind, "batches"}}, {},
             factory<BatchFingerprints>()));
  r.add(make("test.keep_batches", Role::Ordered, {{"in", kBatchKind, "batches"}}, {}, factory<KeepBatches>()));
  r.add(make("test.lender", Role::Ordered, {{"in", kAnyKind, "anything"}},
             {{"lent", "test/lent", "each item, lent"}, {"out", kNumberKind, "each item once back, then -1"}},
             factory<Lender>()));
  PluginInfo borrower = make("test.borrower", Role::Ordered, {{"in", "test/lent", "lent items"}}, {}, factory<Borrower>());
  borrower.params.integer("hold", 1, "give back after this many items; 0 = never").min(0);
  borrower.params.number("sleep_ms", 0.0, "sleep per item").min(0);
  r.add(std::move(borrower));
  r.add(make("test.count_items", Role::Map, {{"in", kAnyKind, "anything"}}, {{"out", kSameKind, "same"}},
             factory<CountItems>()));
  PluginInfo progress = make("test.progress_sink", Role::Ordered, {{"in", kAnyKind, "anything"}}, {},
                             factory<ProgressSink>());
  progress.own_thread = true;
  r.add(std::move(progress));
  r.add(make("test.stop_recorder", Role::Map, {{"in", kAnyKind, "anything"}}, {{"out", kSameKind, "same"}},
             factory<StopRecorder>()));
}

}  // namespace flowrun::testing
