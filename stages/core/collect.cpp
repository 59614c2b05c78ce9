// collect: records what arrives (without keeping the messages themselves, whose
// leases would hold the source's prefetch window open) and, with `path`, writes
// the record as JSON lines when the run ends, atomically.
//
//   {"id": "sink", "plugin": "collect", "params": {"path": "received.jsonl"}}
#include "stages/core/collect.hpp"

#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "stages/core/core_stages.hpp"

namespace flowrun {
namespace {

struct CollectOptions {
  std::string path;
  std::int64_t max_items = 1000000;
  template <typename D>
  static void declare(D& d) {
    d(&CollectOptions::path, "path", "JSON-lines file to write at the end; \"\" = keep in memory only");
    d(&CollectOptions::max_items, "max_items", "most records kept; 0 = unlimited").min(0);
  }
};

}  // namespace

Collect::Collect(const StageArgs& args) : OrderedStage(args) {
  const auto options = read_options<CollectOptions>(args.params);
  path_ = options.path;
  max_items_ = static_cast<std::size_t>(options.max_items);
}

void Collect::record(CollectedItem item) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (max_items_ != 0 && items_.size() >= max_items_) {
    ++dropped_;
    return;
  }
  items_.push_back(std::move(item));
}

void Collect::process(Message in, Emitter&) {
  record({"data", in.epoch, in.index, in.payload ? in.payload->describe() : ""});
}

void Collect::epoch_end(int, std::uint64_t epoch, Emitter&) { record({"epoch_end", epoch, 0, ""}); }

void Collect::stop(StopReason reason) {
  std::uint64_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped = dropped_;
  }
  if (dropped > 0) log::warn("collect '", node_id(), "': ", dropped, " items beyond max_items were not recorded");
  if (path_.empty()) return;
  AtomicFile file(path_);
  std::string text;
  const std::vector<CollectedItem> recorded = items();
  for (const CollectedItem& item : recorded) {
    nlohmann::json line = {{"signal", item.signal}, {"epoch", item.epoch}, {"index", item.index}};
    if (item.signal == "data") line["payload"] = item.payload;
    text += line.dump() + "\n";
  }
  file.write(text);
  file.commit();
  log::info("collect '", node_id(), "': wrote ", recorded.size(), " records to ", path_, " (run ",
            stop_reason_name(reason), ")");
}

std::vector<CollectedItem> Collect::items() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return items_;
}

PluginInfo collect_plugin() {
  PluginInfo p;
  p.name = "collect";
  p.summary = "Records every item it receives, in order; optionally writes them as JSON lines";
  p.description =
      "A sink for tests and debugging. Keeps a record (signal, epoch, index, payload summary) of\n"
      "each data item and epoch end, in stream order. With `path`, the record is written as JSON\n"
      "lines when the run ends (also when it is interrupted), through a temporary file and a\n"
      "rename, so a reader never sees half a file.\n"
      "\n"
      "  {\"id\": \"sink\", \"plugin\": \"collect\", \"params\": {\"path\": \"received.jsonl\"}}";
  p.role = Role::Ordered;
  p.inputs = {{"in", kAnyKind, "items of any kind"}};
  declare_options<CollectOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<Collect>(args); };
  return p;
}

}  // namespace flowrun
