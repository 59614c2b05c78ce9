// Builds and runs the TBB flow graph for a Description. The node bodies here are
// thin adapters: they number messages, attach leases, time the stage, and turn an
// exception into a recorded NodeError plus a graph cancel. Stage logic lives in
// the stages; this file is the only one that includes the flow graph.
#include "flowrun/pipeline.hpp"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>

#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "own_thread.hpp"
#include "profiler.hpp"
#include "trace_viewer.hpp"

namespace flowrun {
namespace flow = oneapi::tbb::flow;

namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t nanoseconds_since(Clock::time_point since) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count());
}

// Items travel through the graph in packets of up to kMaxPacketItems consecutive
// items of one stream: one TBB message, task and queue hop per packet instead of per
// item (those cost about 4 us of CPU per item on this machine, as much as the rest
// of a 32-px loader's work). Map chains loop over a packet's items; ordered stages
// still see items one at a time, in order. Ordered stages emit one item per packet.
struct Packet {
  std::uint64_t seq = 0;  // position among the packets of this edge's stream
  int port = 0;           // input port it arrives on (set by the runtime); kWakePort: RunControl::wake
  std::vector<Message> items;
};
constexpr int kWakePort = -2;
using PacketPtr = std::shared_ptr<const Packet>;
constexpr std::int64_t kMaxPacketItems = 16;

// The prefetch window of one source, counted in packets. A packet holds a slot from
// the moment the source makes it until the last lease of its items dies; slots
// return through the limiter's decrement port. After the run the limiter is detached
// and leases only count.
struct InFlightPool {
  std::mutex mutex;
  flow::limiter_node<PacketPtr, int>* limiter = nullptr;
  std::atomic<std::int64_t> in_flight{0};  // items
  std::atomic<std::int64_t> peak{0};
  profiling::TraceRecorder* trace = nullptr;  // with --profile: "in flight: SOURCE"
  int trace_counter = -1;

  void acquired(std::int64_t items) {
    const std::int64_t now = in_flight += items;
    if (trace) trace->sample(trace_counter, now);
    std::int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  void released(std::int64_t items) {
    const std::int64_t now = in_flight -= items;
    if (trace) trace->sample(trace_counter, now);
    std::lock_guard<std::mutex> lock(mutex);
    if (limiter) limiter->decrementer().try_put(1);
  }
  void detach() {
    std::lock_guard<std::mutex> lock(mutex);
    limiter = nullptr;
  }
};

// Shared by the leases of a packet's items: the packet's slot returns when the last
// of them dies.
struct PacketToken {
  PacketToken(std::shared_ptr<InFlightPool> p, std::int64_t n) : pool(std::move(p)), items(n) { pool->acquired(n); }
  ~PacketToken() { pool->released(items); }
  PacketToken(const PacketToken&) = delete;
  PacketToken& operator=(const PacketToken&) = delete;
  std::shared_ptr<InFlightPool> pool;
  std::int64_t items;
};

// State every body of the run shares.
struct RunState {
  std::atomic<bool> stopping{false};
  std::atomic<bool> ending{false};  // a stage ended the run early: sources end, nothing is dropped
  std::string ended_by, ended_why;  // under error_mutex
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::optional<NodeError> error;
  std::atomic<flow::graph*> graph{nullptr};
  profiling::TraceRecorder* trace = nullptr;  // with --profile only

  bool dropping() const { return stopping.load(std::memory_order_relaxed) || failed.load(std::memory_order_relaxed); }

  void fail(const NodeDesc& node, const std::string& message) {
    {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error.emplace(node.id, node.plugin->name, message);
    }
    failed = true;
    if (flow::graph* g = graph.load()) g->cancel();
  }
};

// One description node at run time: its stage, its TBB nodes, its counters.
struct NodeRuntime {
  const NodeDesc* desc = nullptr;
  std::unique_ptr<Stage> stage;
  std::vector<std::unique_ptr<flow::graph_node>> owned;  // TBB nodes, destroyed with the graph
  std::vector<flow::sender<PacketPtr>*> outputs;          // edge sources, one per output port
  std::vector<flow::receiver<PacketPtr>*> inputs;         // edge targets, one per input port
  std::vector<flow::broadcast_node<PacketPtr>*> emit_to;  // ordered stages: where emitted packets go
  flow::function_node<PacketPtr, flow::continue_msg>* body = nullptr;  // ordered stages: the serial body (wakes)
  std::int64_t packet_items = 1;                          // sources: items per packet
  std::shared_ptr<InFlightPool> pool;                   // sources only
  std::atomic<std::uint64_t> items{0};
  std::atomic<std::uint64_t> busy_ns{0};
  // Steady-clock nanoseconds of the first call's start and the last call's end.
  std::atomic<std::int64_t> first_call_ns{0}, last_call_ns{0};
  profiling::LatencyHistogram latency;
  // Ordered stages: packets arrived at the inputs and not yet handled.
  std::atomic<std::int64_t> queued{0}, max_queued{0};
  std::unique_ptr<OwnThread<PacketPtr>> own_thread;     // ordered stages with PluginInfo::own_thread
  int trace_name = -1;     // this node's (or its map chain's) slice name in the trace
  int queue_counter = -1;  // "queued: NODE" in the trace
  std::uint64_t start_ns = 0;  // in start() and seek()
  int start_trace_name = -1;   // "start: NODE", the slice of its start()

  bool detailed = true;  // latency and span (FLOWRUN_NO_NODE_STATS=1 turns them off, to measure their cost)

  void timed(Clock::time_point start, Clock::time_point end) {
    const auto ns = [](Clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    };
    busy_ns += static_cast<std::uint64_t>(ns(end) - ns(start));
    if (!detailed) return;
    latency.add(static_cast<std::uint64_t>(ns(end) - ns(start)));
    // Plain loads first: after the first call these stores are rare or uncontended. Two
    // threads ending calls at once may leave the earlier end: the span is then short by
    // less than one call, which is all it is used for.
    if (first_call_ns.load(std::memory_order_relaxed) == 0) {
      std::int64_t unset = 0;
      first_call_ns.compare_exchange_strong(unset, ns(start));
    }
    if (ns(end) > last_call_ns.load(std::memory_order_relaxed)) last_call_ns.store(ns(end), std::memory_order_relaxed);
  }
  std::uint64_t active_ns() const {
    const std::int64_t first = first_call_ns.load(), last = last_call_ns.load();
    return first > 0 && last > first ? static_cast<std::uint64_t>(last - first) : 0;
  }
  std::atomic<bool> ended{false};  // a source sent End / an ordered stage saw End on every input
  std::atomic<bool> ending{false};  // sources: RunControl::end_run asked this stream to end
};

// Runs one call into a stage: times it, and turns an exception into the run's
// recorded failure (which cancels the graph). Returns false when the call threw.
template <typename Call>
bool call_stage(NodeRuntime& node, RunState& run, Call&& call) {
  const auto t0 = Clock::now();
  bool ok = true;
  try {
    call();
  } catch (const std::exception& e) {
    run.fail(*node.desc, e.what());
    ok = false;
  } catch (...) {
    run.fail(*node.desc, "unknown exception (not derived from std::exception)");
    ok = false;
  }
  node.timed(t0, Clock::now());
  return ok;
}

// Numbers and routes what an ordered stage emits; used from its serial body only.
class PortEmitter : public Emitter {
 public:
  explicit PortEmitter(NodeRuntime& node) : node_(node), next_seq_(node.emit_to.size(), 0) {}

  void emit(int port, std::shared_ptr<const Payload> payload, std::uint64_t epoch, std::uint64_t index,
            Lease lease) override {
    if (port < 0 || static_cast<std::size_t>(port) >= node_.emit_to.size()) {
      throw std::logic_error("stage emitted on output port " + std::to_string(port) + " but has " +
                             std::to_string(node_.emit_to.size()) + " output port(s)");
    }
    if (!payload) throw std::logic_error("stage emitted an empty payload");
    Message m;
    m.epoch = epoch;
    m.index = index;
    m.payload = std::move(payload);
    m.lease = std::move(lease);
    send(static_cast<std::size_t>(port), std::move(m));
  }

  void signal_all(Signal signal, std::uint64_t epoch) {
    for (std::size_t port = 0; port < node_.emit_to.size(); ++port) {
      Message m;
      m.signal = signal;
      m.epoch = epoch;
      send(port, std::move(m));
    }
  }

 private:
  void send(std::size_t port, Message m) {
    auto packet = std::make_shared<Packet>();
    packet->seq = m.seq = next_seq_[port]++;
    packet->items.push_back(std::move(m));
    node_.emit_to[port]->try_put(PacketPtr(std::move(packet)));
  }

  NodeRuntime& node_;
  std::vector<std::uint64_t> next_seq_;
};

// input_node body: asks the source for up to a packet's worth of items, numbers
// them, and gives them a shared lease.
class SourceBody {
 public:
  SourceBody(NodeRuntime& node, RunState& run) : node_(&node), run_(&run) {}

  PacketPtr operator()(oneapi::tbb::flow_control& control) {
    if (ended_) {
      control.stop();
      return {};
    }
    const auto started = Clock::now();
    auto packet = std::make_shared<Packet>();
    packet->seq = next_packet_++;
    packet->items.reserve(static_cast<std::size_t>(node_->packet_items));
    while (static_cast<std::int64_t>(packet->items.size()) < node_->packet_items && !ended_) {
      Message m;
      m.seq = next_seq_++;
      SourceItem item;
      bool have_item = false;
      if (!run_->dropping() && !node_->ending.load(std::memory_order_relaxed)) {
        call_stage(*node_, *run_, [&] { have_item = static_cast<SourceStage&>(*node_->stage).next(item); });
      }
      if (!have_item || run_->failed) {
        m.signal = Signal::End;
        ended_ = true;
        node_->ended = true;
      } else {
        if (item.signal == Signal::End) throw std::logic_error("sources end by returning false, not with End");
        m.signal = item.signal;
        m.epoch = item.epoch;
        m.index = item.index;
        m.payload = std::move(item.payload);
        if (m.signal == Signal::Data) ++node_->items;
      }
      packet->items.push_back(std::move(m));
    }
    const auto token = std::make_shared<PacketToken>(node_->pool, static_cast<std::int64_t>(packet->items.size()));
    for (Message& m : packet->items) m.lease = token;
    if (run_->trace)
      run_->trace->slice(node_->trace_name, started, Clock::now(), static_cast<std::uint32_t>(packet->items.size()));
    return packet;
  }

 private:
  NodeRuntime* node_;
  RunState* run_;
  std::uint64_t next_seq_ = 0;
  std::uint64_t next_packet_ = 0;
  bool ended_ = false;
};

// function_node body of a chain of per-item stages joined one to one (usually just
// one stage): Data in, Data or Skip out, same seq. Running a chain in one TBB node
// saves a task spawn and a queue hop per item per stage; each stage keeps its own
// counters.
class MapChainBody {
 public:
  MapChainBody(std::vector<NodeRuntime*> chain, RunState& run) : chain_(std::move(chain)), run_(&run) {}

  PacketPtr operator()(const PacketPtr& in) const {
    const auto started = Clock::now();
    // A new packet: the input may be shared with other branches (fan-out).
    auto out = std::make_shared<Packet>();
    out->seq = in->seq;
    out->items = in->items;
    for (Message& m : out->items) {
      m.port = 0;
      if (m.signal == Signal::Data) run_chain(m);
    }
    if (run_->trace)
      run_->trace->slice(chain_.front()->trace_name, started, Clock::now(), static_cast<std::uint32_t>(out->items.size()));
    return out;
  }

 private:
  void run_chain(Message& m) const {
    for (NodeRuntime* node : chain_) {
      std::shared_ptr<const Payload> out;
      if (!run_->dropping()) {
        call_stage(*node, *run_, [&] { out = static_cast<MapStage&>(*node->stage).process(m); });
        ++node->items;
      }
      if (!out) {
        m.signal = Signal::Skip;
        m.payload.reset();
        return;
      }
      m.payload = std::move(out);
    }
  }

  std::vector<NodeRuntime*> chain_;
  RunState* run_;
};

// Serial body of an ordered stage, fed in order by one sequencer per input port.
class OrderedBody {
 public:
  OrderedBody(NodeRuntime& node, RunState& run)
      : node_(&node), run_(&run), emitter_(std::make_shared<PortEmitter>(node)),
        ended_(std::make_shared<std::vector<bool>>(node.desc->plugin->inputs.size(), false)) {}

  flow::continue_msg operator()(const PacketPtr& packet) {
    const auto started = Clock::now();
    const std::int64_t waiting = --node_->queued;
    if (packet->port == kWakePort) wake();
    for (const Message& item : packet->items) handle(item, packet->port);
    if (run_->trace) {
      run_->trace->sample(node_->queue_counter, waiting);
      run_->trace->slice(node_->trace_name, started, Clock::now(), static_cast<std::uint32_t>(packet->items.size()));
    }
    return {};
  }

 private:
  void handle(Message m, int port) {
    auto& stage = static_cast<OrderedStage&>(*node_->stage);
    m.port = port;
    call_stage(*node_, *run_, [&] {
      switch (m.signal) {
        case Signal::Data:
          if (!run_->dropping()) {
            ++node_->items;
            stage.process(std::move(m), *emitter_);
          }
          break;
        case Signal::Skip:
          if (!run_->dropping()) stage.skipped(m);
          break;
        case Signal::EpochEnd:
          if (!run_->dropping()) stage.epoch_end(port, m.epoch, *emitter_);
          if (port == 0) emitter_->signal_all(Signal::EpochEnd, m.epoch);
          break;
        case Signal::End:
          (*ended_)[static_cast<std::size_t>(port)] = true;
          if (!run_->dropping()) stage.input_ended(port, *emitter_);
          if (all_inputs_ended()) finish_when_not_waiting(m.epoch);
          break;
      }
    });
  }

  void wake() {
    auto& stage = static_cast<OrderedStage&>(*node_->stage);
    call_stage(*node_, *run_, [&] {
      if (run_->dropping()) return;
      stage.woken(*emitter_);
      if (all_inputs_ended()) finish_when_not_waiting(0);
    });
  }

  // A stage still waiting for a wake finishes at the wake that ends its wait.
  void finish_when_not_waiting(std::uint64_t epoch) {
    auto& stage = static_cast<OrderedStage&>(*node_->stage);
    if (node_->ended || (!run_->dropping() && stage.waiting())) return;
    node_->ended = true;
    if (!run_->dropping()) stage.finish(*emitter_);
    emitter_->signal_all(Signal::End, epoch);
  }

  bool all_inputs_ended() const {
    for (std::size_t i = 0; i < ended_->size(); ++i)
      if (!node_->desc->input_kinds[i].empty() && !(*ended_)[i]) return false;
    return true;
  }

  NodeRuntime* node_;
  RunState* run_;
  // Shared so that the copies TBB makes of the body see one emitter and one state.
  std::shared_ptr<PortEmitter> emitter_;
  std::shared_ptr<std::vector<bool>> ended_;
};

// What an ordered stage emits from drain(): delivered at once, on this thread, to
// the stages downstream (the graph has already finished). Map stages process and
// pass on; ordered stages get process() with an emitter of this kind.
class DrainEmitter : public Emitter {
 public:
  using Nodes = std::vector<std::unique_ptr<NodeRuntime>>;
  DrainEmitter(const Description& d, Nodes& nodes, int node) : d_(d), nodes_(nodes), node_(node) {}

  void emit(int port, std::shared_ptr<const Payload> payload, std::uint64_t epoch, std::uint64_t index,
            Lease lease) override {
    Message m;
    m.epoch = epoch;
    m.index = index;
    m.payload = std::move(payload);
    m.lease = std::move(lease);
    deliver(node_, port, m);
  }

 private:
  void deliver(int from, int port, const Message& m) {
    for (const EdgeDesc& e : d_.edges) {
      if (e.from_node != from || e.from_port != port) continue;
      NodeRuntime& target = *nodes_[static_cast<std::size_t>(e.to_node)];
      Message copy = m;
      copy.port = e.to_port;
      const auto t0 = Clock::now();
      if (target.desc->plugin->role == Role::Ordered) {
        DrainEmitter next(d_, nodes_, e.to_node);
        static_cast<OrderedStage&>(*target.stage).process(std::move(copy), next);
      } else if (target.desc->plugin->role == Role::Map) {
        copy.payload = static_cast<MapStage&>(*target.stage).process(copy);
        if (copy.payload) deliver(e.to_node, 0, copy);
      }
      ++target.items;
      target.busy_ns += nanoseconds_since(t0);
    }
  }

  const Description& d_;
  Nodes& nodes_;
  int node_;
};

}  // namespace

struct Pipeline::Impl : RunControl {
  Description description;
  RunOptions options;
  int threads = 1;
  // Declared before the nodes: leases their stages still hold report to it when they die.
  std::unique_ptr<profiling::TraceRecorder> trace;
  std::vector<std::string> trace_names, trace_categories;  // slice names: node ids, then map chains
  // Declared before the nodes: a payload a stage still holds may call wake() as it dies.
  std::mutex wake_mutex;
  bool accepting_wakes = false;  // under wake_mutex: while the graph runs
  std::vector<std::unique_ptr<NodeRuntime>> nodes;  // index = description node index
  RunState run;
  bool ran = false;

  void create_stages();
  void start_trace(std::chrono::steady_clock::time_point origin);
  void write_trace();
  void build(flow::graph& g);
  void build_source(flow::graph& g, NodeRuntime& node);
  void build_map_chain(flow::graph& g, const std::vector<int>& chain);
  std::vector<std::vector<int>> map_chains() const;
  void build_ordered(flow::graph& g, NodeRuntime& node);
  void build_on_own_thread(flow::graph& g, NodeRuntime& node);
  void start_stages();
  void drain_stages(StopReason reason);
  void stop_stages(StopReason reason);
  void end_run(const std::string& node_id, const std::string& why, const std::vector<std::string>& sources) override;
  std::vector<UpstreamNode> upstream_of(int node) const;
  void end_sources(const std::vector<std::string>& sources) override;
  void wake(const std::string& node_id) override;
  std::string stall_message() const;
  RunReport report(StopReason reason, double seconds) const;
};

void Pipeline::Impl::create_stages() {
  const std::string device =
      options.resolve_device ? options.resolve_device(description.device)
                             : (description.device == "auto" ? std::string("cpu") : description.device);
  auto context = std::make_shared<RunContext>();
  context->name = description.name;
  context->folder = options.run_folder;
  context->resolved_json = description.resolved_json;
  context->resume_from = options.resume_from;
  context->saved_states = options.saved_states;
  for (const auto& [id, at] : options.start_positions) {
    const int index = description.node_index(id);
    if (index < 0 || description.nodes[static_cast<std::size_t>(index)].plugin->role != Role::Source) {
      throw std::runtime_error("cannot resume: the checkpoint has a stream position for source '" + id +
                               "', which this pipeline does not have (resume with the pipeline it was saved from)");
    }
  }
  for (const NodeDesc& desc : description.nodes) {
    auto node = std::make_unique<NodeRuntime>();
    node->desc = &desc;
    node->detailed = !std::getenv("FLOWRUN_NO_NODE_STATS");
    StageArgs args;
    args.node_id = desc.id;
    args.params = desc.params;
    args.seed = description.seed;
    args.device = device;
    args.threads = threads;
    args.random = RandomStreams(description.seed, desc.id);
    args.run = context;
    args.control = this;
    for (const std::string& kind : desc.input_kinds) args.inputs_connected.push_back(!kind.empty());
    args.outputs_connected.assign(desc.plugin->outputs.size(), false);
    const int self = description.node_index(desc.id);
    args.input_upstream.assign(desc.plugin->inputs.size(), {});
    for (const EdgeDesc& e : description.edges) {
      if (e.from_node == self) args.outputs_connected[static_cast<std::size_t>(e.from_port)] = true;
      if (e.to_node == self) args.input_upstream[static_cast<std::size_t>(e.to_port)] = upstream_of(e.from_node);
    }
    try {
      node->stage = desc.plugin->create(args);
    } catch (const std::exception& e) {
      throw NodeError(desc.id, desc.plugin->name, std::string("could not be created: ") + e.what());
    }
    if (!node->stage) throw NodeError(desc.id, desc.plugin->name, "plugin factory returned no stage");
    const bool role_ok = (desc.plugin->role == Role::Source && dynamic_cast<SourceStage*>(node->stage.get())) ||
                         (desc.plugin->role == Role::Map && dynamic_cast<MapStage*>(node->stage.get())) ||
                         (desc.plugin->role == Role::Ordered && dynamic_cast<OrderedStage*>(node->stage.get()));
    if (!role_ok) {
      throw NodeError(desc.id, desc.plugin->name,
                      std::string("plugin declares role '") + role_name(desc.plugin->role) +
                          "' but its factory made a stage of another role");
    }
    nodes.push_back(std::move(node));
  }
}

void Pipeline::Impl::start_trace(std::chrono::steady_clock::time_point origin) {
  if (options.profile_path.empty()) return;
  trace = std::make_unique<profiling::TraceRecorder>(origin);
  run.trace = trace.get();
  for (auto& node : nodes) {
    node->trace_name = static_cast<int>(trace_names.size());
    trace_names.push_back(node->desc->id);
    trace_categories.push_back(role_name(node->desc->plugin->role));
    if (node->desc->plugin->role == Role::Ordered) node->queue_counter = trace->add_counter("queued: " + node->desc->id);
  }
  for (auto& node : nodes) {
    node->start_trace_name = static_cast<int>(trace_names.size());
    trace_names.push_back("start: " + node->desc->id);
    trace_categories.push_back("start");
  }
}

// Counter tracks of the sources' prefetch windows exist once build() made the pools.
void Pipeline::Impl::write_trace() {
  if (!trace) return;
  try {
    trace->write(options.profile_path, "flowrun " + description.name, trace_names, trace_categories);
    log::info("profile: ", options.profile_path, " (Chrome trace events: open it in Perfetto or chrome://tracing) and ",
              profiling::trace_viewer_path(options.profile_path), " (the same, drawn: any browser, offline)");
  } catch (const std::exception& e) {
    log::error("could not write the profile: ", e.what());
  }
}

void Pipeline::Impl::build_source(flow::graph& g, NodeRuntime& node) {
  node.pool = std::make_shared<InFlightPool>();
  // Packets small enough that the window holds at least eight of them; the packet
  // the input_node holds while the limiter is full counts too, hence - 1. So at most
  // prefetch items are alive.
  node.packet_items = std::clamp<std::int64_t>(description.prefetch / 8, 1, kMaxPacketItems);
  const auto window =
      static_cast<std::size_t>(std::max<std::int64_t>(1, description.prefetch / node.packet_items - 1));
  auto input = std::make_unique<flow::input_node<PacketPtr>>(g, SourceBody(node, run));
  auto limiter = std::make_unique<flow::limiter_node<PacketPtr, int>>(g, window);
  flow::make_edge(*input, *limiter);
  node.pool->limiter = limiter.get();
  if (trace) {
    node.pool->trace = trace.get();
    node.pool->trace_counter = trace->add_counter("in flight: " + node.desc->id);
  }
  node.outputs.push_back(limiter.get());
  node.owned.push_back(std::move(input));
  node.owned.push_back(std::move(limiter));
}

void Pipeline::Impl::build_map_chain(flow::graph& g, const std::vector<int>& chain) {
  NodeRuntime& head = *nodes[static_cast<std::size_t>(chain.front())];
  NodeRuntime& tail = *nodes[static_cast<std::size_t>(chain.back())];
  std::size_t concurrency = flow::unlimited;
  if (head.desc->concurrency > 0) concurrency = static_cast<std::size_t>(head.desc->concurrency);
  std::vector<NodeRuntime*> members;
  for (int i : chain) members.push_back(nodes[static_cast<std::size_t>(i)].get());
  auto fn = std::make_unique<flow::function_node<PacketPtr, PacketPtr>>(g, concurrency, MapChainBody(members, run));
  head.inputs.push_back(fn.get());
  tail.outputs.push_back(fn.get());
  head.owned.push_back(std::move(fn));
}

// Map stages joined one to one (the first's only edge goes to the second, with the
// same concurrency) run as one chain. Returns the chains, each in stream order.
std::vector<std::vector<int>> Pipeline::Impl::map_chains() const {
  const std::size_t n = nodes.size();
  std::vector<int> out_edges(n, 0), next(n, -1), has_prev(n, 0);
  for (const EdgeDesc& e : description.edges) ++out_edges[static_cast<std::size_t>(e.from_node)];
  const auto is_map = [&](int i) { return description.nodes[static_cast<std::size_t>(i)].plugin->role == Role::Map; };
  for (const EdgeDesc& e : description.edges) {
    const auto from = static_cast<std::size_t>(e.from_node), to = static_cast<std::size_t>(e.to_node);
    if (!std::getenv("FLOWRUN_NO_FUSE") && is_map(e.from_node) && is_map(e.to_node) && out_edges[from] == 1 &&
        description.nodes[from].concurrency == description.nodes[to].concurrency) {
      next[from] = e.to_node;
      has_prev[to] = 1;
    }
  }
  std::vector<std::vector<int>> chains;
  for (int i : description.topological_order) {
    if (!is_map(i) || has_prev[static_cast<std::size_t>(i)]) continue;
    std::vector<int> chain;
    for (int k = i; k >= 0; k = next[static_cast<std::size_t>(k)]) chain.push_back(k);
    chains.push_back(std::move(chain));
  }
  return chains;
}

// Counts a packet as queued at `node` (until the stage takes it) and tags it with the
// input port it arrived on (a copy only when that differs from the port it carries: packets
// are made with port 0, so only a stage's second and later inputs copy).
PacketPtr arrived(NodeRuntime& node, RunState& run, const PacketPtr& in, int port) {
  const std::int64_t now = ++node.queued;
  std::int64_t seen = node.max_queued.load(std::memory_order_relaxed);
  while (now > seen && !node.max_queued.compare_exchange_weak(seen, now)) {
  }
  if (run.trace) run.trace->sample(node.queue_counter, now);
  if (in->port == port) return in;
  auto tagged = std::make_shared<Packet>(*in);
  tagged->port = port;
  return PacketPtr(std::move(tagged));
}

// The handler of a stage on its own thread: puts each input port's packets back in
// stream order (they arrive as the upstream threads finish them) and hands them to the
// stage's body; wakes go straight through.
class InOrderOnOwnThread {
 public:
  InOrderOnOwnThread(NodeRuntime& node, RunState& run, std::size_t ports)
      : body_(node, run), next_(ports, 0), pending_(ports) {}
  void operator()(const PacketPtr& packet) {
    if (packet->port == kWakePort) {
      body_(packet);
      return;
    }
    const auto port = static_cast<std::size_t>(packet->port);
    pending_[port].emplace(packet->seq, packet);
    for (auto& waiting = pending_[port]; !waiting.empty() && waiting.begin()->first == next_[port];) {
      const PacketPtr ready = std::move(waiting.begin()->second);
      waiting.erase(waiting.begin());
      ++next_[port];
      body_(ready);
    }
  }

 private:
  OrderedBody body_;
  std::vector<std::uint64_t> next_;                      // per port: the seq handled next
  std::vector<std::map<std::uint64_t, PacketPtr>> pending_;  // per port: arrived early
};

void Pipeline::Impl::build_ordered(flow::graph& g, NodeRuntime& node) {
  for (std::size_t port = 0; port < node.desc->plugin->outputs.size(); ++port) {
    auto out = std::make_unique<flow::broadcast_node<PacketPtr>>(g);
    node.emit_to.push_back(out.get());
    node.outputs.push_back(out.get());
    node.owned.push_back(std::move(out));
  }
  const std::size_t input_count = node.desc->plugin->inputs.size();
  node.inputs.assign(input_count, nullptr);
  if (node.desc->plugin->own_thread) {
    build_on_own_thread(g, node);
    return;
  }
  auto body = std::make_unique<flow::function_node<PacketPtr, flow::continue_msg>>(g, flow::serial,
                                                                                   OrderedBody(node, run));
  node.body = body.get();
  for (std::size_t port = 0; port < input_count; ++port) {
    if (node.desc->input_kinds[port].empty()) continue;  // optional port left unconnected
    auto sequencer =
        std::make_unique<flow::sequencer_node<PacketPtr>>(g, [](const PacketPtr& p) { return p->seq; });
    flow::make_edge(*sequencer, *body);
    // On the way in, each packet is counted as queued and tagged with its port.
    NodeRuntime* self = &node;
    RunState* state = &run;
    const int tag = static_cast<int>(port);
    auto arrival = std::make_unique<flow::function_node<PacketPtr, PacketPtr, flow::lightweight>>(
        g, flow::unlimited, [tag, self, state](const PacketPtr& in) { return arrived(*self, *state, in, tag); });
    flow::make_edge(*arrival, *sequencer);
    node.inputs[port] = arrival.get();
    node.owned.push_back(std::move(arrival));
    node.owned.push_back(std::move(sequencer));
  }
  node.owned.push_back(std::move(body));
}

// A sink on its own thread: no sequencer and no serial task. Each packet is handed to
// the stage's thread by the thread that delivers it, at once: a lightweight node runs
// its body in the caller, but only when the body is noexcept (TBB makes a task
// otherwise), and a task of the runtime's could wait under newer ones, which is what
// this is for. The stage's thread restores stream order per port. The graph counts
// each packet as outstanding work until it is handed on, so wait_for_all waits for it.
void Pipeline::Impl::build_on_own_thread(flow::graph& g, NodeRuntime& node) {
  if (!node.desc->plugin->outputs.empty())
    throw std::logic_error("plugin " + node.desc->plugin->name + " has outputs: only sinks run on their own thread");
  RunState* state = &run;
  const std::string track = "own thread: " + node.desc->id;
  node.own_thread = std::make_unique<OwnThread<PacketPtr>>(
      InOrderOnOwnThread(node, run, node.inputs.size()), [&g] { g.reserve_wait(); }, [&g] { g.release_wait(); },
      [state, track] {
        if (state->trace) state->trace->name_thread(track);
      });
  for (std::size_t port = 0; port < node.inputs.size(); ++port) {
    if (node.desc->input_kinds[port].empty()) continue;
    NodeRuntime* self = &node;
    const int tag = static_cast<int>(port);
    auto arrival = std::make_unique<flow::function_node<PacketPtr, flow::continue_msg, flow::lightweight>>(
        g, flow::unlimited, [tag, self, state](const PacketPtr& in) noexcept {
          self->own_thread->hand_over(arrived(*self, *state, in, tag));
          return flow::continue_msg();
        });
    node.inputs[port] = arrival.get();
    node.owned.push_back(std::move(arrival));
  }
}

void Pipeline::Impl::build(flow::graph& g) {
  for (auto& node : nodes) {
    if (node->desc->plugin->role == Role::Source) build_source(g, *node);
    if (node->desc->plugin->role == Role::Ordered) build_ordered(g, *node);
  }
  std::vector<int> chained_to(nodes.size(), -1);  // inside a chain: the next member
  for (const std::vector<int>& chain : map_chains()) {
    if (trace && chain.size() > 1) {  // one slice per packet for the whole chain
      std::string label;
      for (int i : chain) label += (label.empty() ? "" : " > ") + description.nodes[static_cast<std::size_t>(i)].id;
      nodes[static_cast<std::size_t>(chain.front())]->trace_name = static_cast<int>(trace_names.size());
      trace_names.push_back(label);
      trace_categories.push_back("map chain");
    }
    build_map_chain(g, chain);
    for (std::size_t k = 0; k + 1 < chain.size(); ++k) chained_to[static_cast<std::size_t>(chain[k])] = chain[k + 1];
  }
  for (const EdgeDesc& edge : description.edges) {
    if (chained_to[static_cast<std::size_t>(edge.from_node)] == edge.to_node) continue;  // inside one TBB node
    flow::make_edge(*nodes[edge.from_node]->outputs[edge.from_port],
                    *nodes[edge.to_node]->inputs[edge.to_port]);
  }
}

void Pipeline::Impl::start_stages() {
  for (int index : description.topological_order) {
    NodeRuntime& node = *nodes[index];
    const auto started = Clock::now();
    try {
      node.stage->start();
    } catch (const std::exception& e) {
      throw NodeError(node.desc->id, node.desc->plugin->name, std::string("failed to start: ") + e.what());
    }
    const auto at = options.start_positions.find(node.desc->id);
    if (at != options.start_positions.end()) {
      try {
        static_cast<SourceStage&>(*node.stage).seek(at->second);
      } catch (const std::exception& e) {
        throw NodeError(node.desc->id, node.desc->plugin->name, std::string("cannot resume: ") + e.what());
      }
      log::info("[", node.desc->id, "] resuming at epoch ", at->second.epoch, ", item ", at->second.position);
    }
    // start() and seek() together, also as a "start: NODE" slice on the starting thread's track.
    node.start_ns = nanoseconds_since(started);
    if (trace) trace->slice(node.start_trace_name, started, Clock::now(), 0);
  }
}

void Pipeline::Impl::end_run(const std::string& node_id, const std::string& why,
                             const std::vector<std::string>& sources) {
  {
    std::lock_guard<std::mutex> lock(run.error_mutex);
    if (run.ending) return;
    run.ended_by = node_id;
    run.ended_why = why;
  }
  for (auto& node : nodes)
    if (node->pool && (sources.empty() || std::find(sources.begin(), sources.end(), node->desc->id) != sources.end()))
      node->ending = true;
  run.ending = true;
}

void Pipeline::Impl::end_sources(const std::vector<std::string>& sources) {
  for (auto& node : nodes)
    if (node->pool && std::find(sources.begin(), sources.end(), node->desc->id) != sources.end()) node->ending = true;
}

void Pipeline::Impl::wake(const std::string& node_id) {
  std::lock_guard<std::mutex> lock(wake_mutex);
  if (!accepting_wakes) return;  // also while the stages are destroyed
  const int index = description.node_index(node_id);
  if (index < 0) throw std::logic_error("wake: no node '" + node_id + "'");
  NodeRuntime& node = *nodes[static_cast<std::size_t>(index)];
  if (!node.body && !node.own_thread) throw std::logic_error("wake: node '" + node_id + "' is not an ordered stage");
  auto packet = std::make_shared<Packet>();
  packet->port = kWakePort;
  ++node.queued;
  if (node.own_thread) node.own_thread->hand_over(PacketPtr(std::move(packet)));
  else node.body->try_put(PacketPtr(std::move(packet)));
}

// `node` and everything upstream of it, breadth first (nearest first).
std::vector<UpstreamNode> Pipeline::Impl::upstream_of(int node) const {
  std::vector<UpstreamNode> found;
  for (int u : description.upstream_of(node)) {
    const NodeDesc& d = description.nodes[static_cast<std::size_t>(u)];
    found.push_back({d.id, d.plugin->name, d.plugin->role == Role::Source});
  }
  return found;
}

// Failures while draining are logged, not thrown: the run's outcome is already decided.
void Pipeline::Impl::drain_stages(StopReason reason) {
  for (int index : description.topological_order) {
    NodeRuntime& node = *nodes[static_cast<std::size_t>(index)];
    if (node.desc->plugin->role != Role::Ordered) continue;
    try {
      DrainEmitter out(description, nodes, index);
      static_cast<OrderedStage&>(*node.stage).drain(reason, out);
    } catch (const std::exception& e) {
      log::error("[", node.desc->id, "] while saving state at the end of the run: ", e.what());
    }
  }
}

void Pipeline::Impl::stop_stages(StopReason reason) {
  std::optional<NodeError> first_error;
  for (int index : description.topological_order) {
    NodeRuntime& node = *nodes[index];
    try {
      node.stage->stop(reason);
    } catch (const std::exception& e) {
      if (!first_error) first_error.emplace(node.desc->id, node.desc->plugin->name, std::string("failed to stop: ") + e.what());
    }
  }
  if (first_error) throw *first_error;
}

// The graph went idle: if a stream did not reach its end, some stage is holding
// items while its source's prefetch window is full (a batch larger than the window),
// and finishing quietly would be a silent partial result.
std::string Pipeline::Impl::stall_message() const {
  std::string stuck_sources;
  std::string waiting_nodes;
  std::string waiting_for_wake;
  for (auto& node : nodes) {
    if (node->ended) continue;
    if (node->desc->plugin->role == Role::Ordered && static_cast<const OrderedStage&>(*node->stage).waiting()) {
      waiting_for_wake += (waiting_for_wake.empty() ? "" : ", ") + node->desc->id;
      continue;
    }
    if (node->pool) {
      stuck_sources += (stuck_sources.empty() ? "" : ", ") + node->desc->id + " (" +
                       std::to_string(node->pool->in_flight.load()) + " items held)";
    } else if (node->desc->plugin->role == Role::Ordered) {
      waiting_nodes += (waiting_nodes.empty() ? "" : ", ") + node->desc->id;
    }
  }
  if (stuck_sources.empty() && waiting_nodes.empty() && waiting_for_wake.empty()) return "";
  if (run.stopping) return "";  // an interrupted run does not reach its end by design
  if (!waiting_for_wake.empty()) {
    return "the pipeline stalled before its end: stage(s) " + waiting_for_wake +
           " still wait for work they handed to other stages (a model lent to an evaluation), which never came back";
  }
  return "the pipeline stalled before its end: source(s) " + (stuck_sources.empty() ? "-" : stuck_sources) +
      " wait for free prefetch slots while stage(s) " + (waiting_nodes.empty() ? "-" : waiting_nodes) +
      " wait for more items. A stage gathers more items than prefetch (" + std::to_string(description.prefetch) +
      ") admits; raise \"prefetch\" well above the largest batch";
}

RunReport Pipeline::Impl::report(StopReason reason, double seconds) const {
  RunReport r;
  r.reason = reason;
  r.ended_by = run.ended_by;
  r.ended_why = run.ended_why;
  r.seconds = seconds;
  r.threads = threads;
  for (int index : description.topological_order) {
    const NodeRuntime& node = *nodes[index];
    NodeStats stats{node.desc->id, node.desc->plugin->name, node.items.load(), node.busy_ns.load(), node.active_ns()};
    stats.calls = node.latency.count();
    stats.p50_s = node.latency.quantile(0.5);
    stats.p90_s = node.latency.quantile(0.9);
    stats.p99_s = node.latency.quantile(0.99);
    stats.max_queued = node.max_queued.load();
    stats.start_ns = node.start_ns;
    r.nodes.push_back(std::move(stats));
    if (node.pool) r.sources.push_back({node.desc->id, node.pool->peak.load()});
  }
  return r;
}

Pipeline::Pipeline(Description description, RunOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->description = std::move(description);
  impl_->options = std::move(options);
  impl_->threads = impl_->description.threads > 0 ? impl_->description.threads
                                                  : oneapi::tbb::info::default_concurrency();
  impl_->create_stages();
}

Pipeline::~Pipeline() = default;

RunReport Pipeline::run() {
  Impl& s = *impl_;
  if (s.ran) throw std::logic_error("Pipeline::run() called twice");
  s.ran = true;
  const auto t0 = Clock::now();
  s.start_trace(t0);
  oneapi::tbb::task_arena arena(s.threads);
  std::optional<NodeError> start_error;
  std::string stall;
  std::uint64_t start_ns = 0;
  arena.execute([&] {
    flow::graph g;  // made inside the arena so that all its tasks run there
    s.run.graph = &g;
    s.build(g);
    const auto starting = Clock::now();
    try {
      s.start_stages();
    } catch (const NodeError& e) {
      start_error = e;
    }
    start_ns = nanoseconds_since(starting);
    if (!start_error) {
      for (auto& node : s.nodes)
        if (node->desc->plugin->role == Role::Source)
          static_cast<flow::input_node<PacketPtr>*>(node->owned.front().get())->activate();
    }
    {
      std::lock_guard<std::mutex> lock(s.wake_mutex);
      s.accepting_wakes = true;
    }
    // Also without a start: building spawns forwarding tasks that must finish
    // before the nodes they point at are destroyed. A wake sent while the first wait
    // returns still runs: the second wait sees its task.
    g.wait_for_all();
    {
      std::lock_guard<std::mutex> lock(s.wake_mutex);
      s.accepting_wakes = false;
    }
    g.wait_for_all();
    for (auto& node : s.nodes)  // idle: nothing left in their queues
      if (node->own_thread) node->own_thread->join();
    if (!start_error && !s.run.failed) stall = s.stall_message();  // before buffers are dropped
    for (auto& node : s.nodes)
      if (node->pool) node->pool->detach();
    s.run.graph = nullptr;
    for (auto& node : s.nodes) node->owned.clear();  // drop buffered messages before g dies
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const StopReason reason = (start_error || s.run.failed || !stall.empty()) ? StopReason::Failed
                            : s.run.stopping             ? StopReason::Interrupted
                                                         : StopReason::Finished;
  if (reason != StopReason::Finished && !start_error) s.drain_stages(reason);
  try {
    s.stop_stages(reason);
  } catch (const NodeError& e) {
    if (!start_error && !s.run.error && stall.empty()) throw;
    log::error(e.what());  // the first failure is the one to report
  }
  s.write_trace();
  if (start_error) throw *start_error;
  if (s.run.error) throw *s.run.error;
  if (!stall.empty()) throw std::runtime_error(stall);
  RunReport report = s.report(reason, seconds);
  report.start_seconds = static_cast<double>(start_ns) * 1e-9;
  return report;
}

void Pipeline::request_stop() { impl_->run.stopping = true; }
bool Pipeline::stop_requested() const { return impl_->run.stopping; }
void Pipeline::cancel() {
  impl_->run.stopping = true;
  if (flow::graph* g = impl_->run.graph) g->cancel();
}

const Description& Pipeline::description() const { return impl_->description; }

Stage* Pipeline::stage(const std::string& node_id) const {
  const int index = impl_->description.node_index(node_id);
  return index < 0 ? nullptr : impl_->nodes[static_cast<std::size_t>(index)]->stage.get();
}

}  // namespace flowrun
