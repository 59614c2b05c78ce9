// tensorboard: writes the train stage's metrics as TensorBoard scalars under the tags
// people know from PyTorch scripts (Loss/train, Loss/val, Accuracy/val, LR, GradNorm),
// keyed by optimizer step. `tensorboard --logdir LOGDIR` shows them live.
#include <map>

#include "flowrun/options.hpp"
#include "lib/distributed/process_group.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/monitor/event_file.hpp"
#include "stages/monitor/monitor_plugins.hpp"

namespace flowrun {
namespace {

// (scope, metric) -> tag; metrics not listed go to "<scope>/<metric>".
const std::map<std::pair<std::string, std::string>, std::string> kTags = {
    {{"train", "loss"}, "Loss/train"},
    {{"train", "accuracy"}, "Accuracy/train"},
    {{"train", "lr"}, "LR"},
    {{"train", "grad_norm"}, "GradNorm"},
    {{"train", "images_per_s"}, "Throughput/images_per_s"},
    {{"train", "total_steps"}, ""},  // not a curve: the schedule's length, for progress readers
    {{"train_epoch", "loss"}, "Loss/train_epoch"},
    {{"train_epoch", "accuracy"}, "Accuracy/train_epoch"},
    {{"train_epoch", "seconds"}, "Time/epoch_seconds"},
    {{"eval", "loss"}, "Loss/val"},
    {{"eval", "accuracy"}, "Accuracy/val"},
    {{"eval", "top5_accuracy"}, "Accuracy/val_top5"},
    {{"eval", "macro_f1"}, "F1/val_macro"},
    {{"eval", "ema_loss"}, "Loss/val_ema"},
    {{"eval", "ema_accuracy"}, "Accuracy/val_ema"},
    {{"eval", "samples"}, ""},  // not a curve
};

struct TensorboardOptions {
  std::string logdir;
  template <typename D>
  static void declare(D& d) {
    d(&TensorboardOptions::logdir, "logdir",
      "folder for the event file (created if missing); \"\" = the run folder's tensorboard/");
  }
};

class TensorboardStage : public OrderedStage {
 public:
  explicit TensorboardStage(const StageArgs& args)
      : TensorboardStage(args, read_options<TensorboardOptions>(args.params)) {}
  TensorboardStage(const StageArgs& args, const TensorboardOptions& o)
      : OrderedStage(args),
        logdir_(!o.logdir.empty() ? o.logdir : args.run->in_folder("tensorboard", "runs/tensorboard")),
        resumed_(!args.run->resume_from.empty()),
        writes_(writes_run_files()) {}

  void start() override {
    if (writes_) writer_ = std::make_unique<EventFileWriter>(logdir_);
  }

  void process(Message in, Emitter&) override {
    if (!writes_) return;  // data-parallel: rank 0 writes
    const auto& m = in.as<Metrics>();
    if (resumed_) {  // records arrive in step order: the first one is where the resumed run takes over
      writer_->add_restart(static_cast<std::int64_t>(m.step));
      resumed_ = false;
    }
    for (const auto& [name, value] : m.values) {
      auto it = kTags.find({m.scope, name});
      std::string tag = it != kTags.end() ? it->second : m.scope + "/" + name;
      if (m.scope == "train" && name.rfind("lr_layer", 0) == 0) tag = "LR/" + name.substr(3);  // per group: LR/layer3
      if (!tag.empty()) writer_->add_scalar(tag, static_cast<float>(value), static_cast<std::int64_t>(m.step));
    }
  }

 private:
  std::string logdir_;
  std::unique_ptr<EventFileWriter> writer_;
  bool resumed_;  // the restart marker is still to be written
  bool writes_;
};

}  // namespace

PluginInfo tensorboard_plugin() {
  PluginInfo p;
  p.name = "tensorboard";
  p.summary = "Writes training metrics as TensorBoard scalars (Loss/train, Loss/val, Accuracy/val, LR, GradNorm)";
  p.description =
      "Ordered sink for the train stage's metrics output. Writes one event file\n"
      "(LOGDIR/events.out.tfevents.*) in TensorBoard's own format (TFRecord framing with masked\n"
      "CRC-32C, Event/Summary protobufs), each scalar at its optimizer step, flushed as written so\n"
      "`tensorboard --logdir LOGDIR` follows the run live. Tags: Loss/train, Accuracy/train, LR,\n"
      "GradNorm, Throughput/images_per_s (every log_every steps); Loss/train_epoch,\n"
      "Accuracy/train_epoch; Loss/val, Accuracy/val, Accuracy/val_top5, F1/val_macro (and Loss/val_ema,\n"
      "Accuracy/val_ema with an EMA). A resumed run (flowrun --resume) writes a new event file\n"
      "that starts with a restart marker at its first step, so TensorBoard drops the interrupted\n"
      "run's values from there on and each step shows once.\n"
      "\n"
      "  {\"id\": \"tb\", \"plugin\": \"tensorboard\"}     (writes RUN_FOLDER/tensorboard)";
  p.role = Role::Ordered;
  p.own_thread = true;  // writes files: never waits behind the train step, nor the step for its disk
  p.inputs = {{"in", kMetricsKind, "metrics from the train stage"}};
  declare_options<TensorboardOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<TensorboardStage>(args); };
  return p;
}

}  // namespace flowrun
