// checkpoint: writes every state snapshot the train stage hands it to
// FOLDER/ckpt-stepNNNNNNNN.h5, keeps the newest keep_last of them, and keeps
// best.h5 for the best evaluation by best_metric. Runs on its own thread of the
// graph, so training steps on while the file is written; the snapshot holds CPU
// copies taken at the step.
//
// Writes are atomic (write_checkpoint): a kill at any moment leaves every earlier
// file whole. A snapshot that arrives when the run is stopped (Ctrl-C, another
// stage failing, early stopping) is written the same way.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <regex>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "lib/distributed/process_group.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/checkpoint_plugins.hpp"
#include "stages/messages/train_state.hpp"

namespace flowrun {
namespace fs = std::filesystem;

namespace {

const std::regex kCheckpointName(R"(ckpt-step(\d+)\.h5)");

// ckpt-step*.h5 in `folder`, oldest (lowest step) first.
std::vector<std::pair<std::uint64_t, std::string>> list_checkpoints(const std::string& folder) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return found;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, m, kCheckpointName)) found.emplace_back(std::stoull(m[1].str()), entry.path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::string step_file_name(std::uint64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-step%08llu.h5", static_cast<unsigned long long>(step));
  return name;
}

// The newest evaluation in the snapshot's history, if it was made at the snapshot's step.
const Metrics* evaluation_at(const TrainState& state) {
  for (auto it = state.history.rbegin(); it != state.history.rend(); ++it) {
    if (it->scope != "eval") continue;
    return it->step == state.step ? &*it : nullptr;
  }
  return nullptr;
}

enum class BestMode { Auto, Max, Min };

struct CheckpointOptions {
  std::string folder;
  std::int64_t keep_last = 3;
  std::string best_metric;
  BestMode best_mode = BestMode::Auto;
  template <typename D>
  static void declare(D& d) {
    using O = CheckpointOptions;
    d(&O::folder, "folder", "where checkpoints go; \"\" = the run folder's checkpoints/");
    d(&O::keep_last, "keep_last", "how many ckpt-step*.h5 files to keep (oldest removed first); 0 = all").min(0);
    d(&O::best_metric, "best_metric",
      "eval metric that picks best.h5 (accuracy, loss, macro_f1, top5_accuracy...); \"\" = no best.h5");
    d(&O::best_mode, "best_mode", "auto: min for losses, max otherwise",
      {{"auto", BestMode::Auto}, {"max", BestMode::Max}, {"min", BestMode::Min}});
  }
};

class CheckpointStage : public OrderedStage {
 public:
  explicit CheckpointStage(const StageArgs& args) : CheckpointStage(args, read_options<CheckpointOptions>(args.params)) {}
  CheckpointStage(const StageArgs& args, const CheckpointOptions& o)
      : OrderedStage(args),
        folder_(o.folder.empty() ? default_checkpoint_folder(args.run->folder) : o.folder),
        keep_last_(o.keep_last),
        best_metric_(o.best_metric),
        pipeline_json_(args.run->resolved_json),
        writes_(writes_run_files()) {
    maximize_ = o.best_mode == BestMode::Auto ? best_metric_.find("loss") == std::string::npos : o.best_mode == BestMode::Max;
    best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }

  void start() override {
    if (!writes_) return;  // data-parallel: rank 0 saves (every rank holds the same weights)
    fs::create_directories(folder_);
    remove_stale_temporaries();
    const fs::path best = fs::path(folder_) / "best.h5";
    if (!best_metric_.empty() && fs::exists(best)) {
      // A resumed run: the best so far is the one already saved.
      const CheckpointFile saved = read_checkpoint(best.string());
      if (const Metrics* eval = evaluation_at(saved.state)) {
        const auto it = eval->values.find(best_metric_);
        if (it != eval->values.end()) best_ = it->second;
      }
      log::info("[", node_id(), "] best ", best_metric_, " so far: ", best_, " (", best.string(), ")");
    }
  }

  void process(Message in, Emitter&) override {
    if (!writes_) return;
    const auto& state = in.as<TrainState>();
    const fs::path path = fs::path(folder_) / step_file_name(state.step);
    save(state, path.string());
    prune();
    if (best_metric_.empty()) return;
    const Metrics* eval = evaluation_at(state);
    if (!eval || eval->step == last_best_checked_step_) return;
    last_best_checked_step_ = eval->step;
    const auto it = eval->values.find(best_metric_);
    if (it == eval->values.end()) {
      std::string known;
      for (const auto& [name, value] : eval->values) known += (known.empty() ? "" : ", ") + name;
      throw std::runtime_error("best_metric '" + best_metric_ + "' is not an evaluation metric; expected one of: " + known);
    }
    const double value = it->second;
    if (std::isfinite(value) && (maximize_ ? value > best_ : value < best_)) {
      best_ = value;
      save(state, (fs::path(folder_) / "best.h5").string());
      log::info("[", node_id(), "] new best ", best_metric_, " ", value, " at step ", state.step, ": best.h5");
    }
  }

 private:
  void save(const TrainState& state, const std::string& path) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      write_checkpoint(state, path, pipeline_json_);
    } catch (const std::exception& e) {
      throw std::runtime_error("could not save the checkpoint " + path + " (step " + std::to_string(state.step) +
                               ", " + state.reason + " checkpoint): " + e.what() +
                               "; the checkpoints saved before it in " + folder_ + " are intact");
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::error_code ec;
    const double mb = static_cast<double>(fs::file_size(path, ec)) / 1e6;
    log::info("[", node_id(), "] saved ", path, " (", state.reason, ", step ", state.step, ", epoch ", state.epoch, ", ",
              log::fixed(mb, 1), " MB, ", log::fixed(secs, 2), " s)");
  }

  // A writer killed mid-write (kill -9, power loss) leaves its temporary file: the
  // checkpoint it was writing never existed, so the leftover goes.
  void remove_stale_temporaries() {
    static const std::regex temporary(R"(.*\.h5\.tmp-[A-Za-z0-9]{6})");
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder_, ec)) {
      if (!std::regex_match(entry.path().filename().string(), temporary)) continue;
      log::info("[", node_id(), "] removing ", entry.path().string(), " (left by a run killed while saving)");
      fs::remove(entry.path(), ec);
    }
  }

  void prune() {
    if (keep_last_ <= 0) return;
    auto all = list_checkpoints(folder_);
    while (static_cast<std::int64_t>(all.size()) > keep_last_) {
      std::error_code ec;
      fs::remove(all.front().second, ec);
      all.erase(all.begin());
    }
  }

  std::string folder_;
  std::int64_t keep_last_;
  std::string best_metric_;
  std::string pipeline_json_;
  bool writes_;
  bool maximize_ = true;
  double best_;
  std::uint64_t last_best_checked_step_ = std::numeric_limits<std::uint64_t>::max();
};

}  // namespace

std::string default_checkpoint_folder(const std::string& run_folder) {
  RunContext run;
  run.folder = run_folder;
  return run.in_folder("checkpoints", "checkpoints");
}

std::string newest_checkpoint(const std::string& folder) {
  const auto all = list_checkpoints(folder);
  return all.empty() ? std::string() : all.back().second;
}

PluginInfo checkpoint_plugin() {
  PluginInfo p;
  p.name = "checkpoint";
  p.summary = "Writes the train stage's state snapshots to HDF5 checkpoints (atomic), keeps the last K and the best";
  p.description =
      "Connect the train stage's state output here. Every snapshot (every save_every_steps steps,\n"
      "every save_every_epochs epochs, at the end, and when the run is stopped by Ctrl-C, SIGTERM,\n"
      "early stopping or another stage's failure) becomes FOLDER/ckpt-stepNNNNNNNN.h5; the newest\n"
      "keep_last are kept. With best_metric, FOLDER/best.h5 holds the snapshot of the best evaluation.\n"
      "A checkpoint holds the model (one dataset per tensor, timm names), EMA, optimizer state, the\n"
      "schedule position, generator states, the data position of each source, the metrics so far and\n"
      "the resolved pipeline (attribute 'pipeline'): `flowrun PIPELINE.json --resume FILE|auto`\n"
      "continues bit for bit; `flowrun export FILE OUT_FOLDER` writes safetensors with Hugging Face\n"
      "names. Files are written to a temporary name, fsynced and renamed: a kill leaves the previous\n"
      "ones intact.\n"
      "\n"
      "  {\"id\": \"ckpt\", \"plugin\": \"checkpoint\", \"params\": {\"keep_last\": 2, \"best_metric\": \"accuracy\"}}";
  p.role = Role::Ordered;
  p.own_thread = true;  // writes files: never waits behind the train step, nor the step for its disk
  p.inputs = {{"state", kTrainStateKind, "snapshots from the train stage's state output"}};
  declare_options<CheckpointOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<CheckpointStage>(args); };
  return p;
}

}  // namespace flowrun
