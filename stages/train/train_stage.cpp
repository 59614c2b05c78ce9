// train: fine-tunes (or trains) a ViT on the batches of its "train" input and
// evaluates it on the batches of its optional "eval" input after every epoch.
//
// Evaluation without stopping the loaders: the eval source runs one epoch per
// evaluation, and both inputs arrive interleaved in one serial stage. Events of
// the input that is not current wait in a queue (holding their prefetch slots, so
// each loader keeps at most `prefetch` items ready): while training, eval batches
// wait; when a training epoch ends, the stage evaluates the next eval epoch while
// training batches of the next epoch wait. The model every evaluation sees is
// therefore fixed by the data, not by thread timing.
#include <chrono>
#include <cstdio>
#include <deque>
#include <unordered_map>

#include "flowrun/logging.hpp"
#include "stages/batch/batch.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/eval/evaluation.hpp"
#include "stages/train/diagnostics.hpp"
#include "stages/train/early_stopping.hpp"
#include "stages/train/train_state.hpp"
#include "stages/model/hub.hpp"
#include "stages/train/metrics.hpp"
#include "stages/train/train_plugins.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {
namespace {

constexpr int kTrainPort = 0;
constexpr int kEvalPort = 1;
constexpr int kTestPort = 2;
constexpr int kMetricsPort = 0;
constexpr int kStatePort = 1;
constexpr int kEvaluationsPort = 2;

VitConfig model_config(const Params& p) {
  VitConfig c = vit_preset(p.string("model"));
  auto override_int = [&](const char* name, int& field) {
    if (p.integer(name) > 0) field = static_cast<int>(p.integer(name));
  };
  override_int("image_size", c.image_size);
  override_int("patch_size", c.patch_size);
  override_int("width", c.width);
  override_int("depth", c.depth);
  override_int("heads", c.heads);
  if (p.number("mlp_ratio") > 0) c.mlp_ratio = p.number("mlp_ratio");
  c.qkv_bias = p.boolean("qkv_bias");
  c.dropout = p.number("dropout");
  c.attn_dropout = p.number("attn_dropout");
  c.drop_path = p.number("drop_path");
  c.pool = p.string("pool") == "cls" ? VitPool::Cls : VitPool::Mean;
  c.num_classes = static_cast<int>(p.integer("num_classes"));
  c.layer_norm_eps = p.number("layer_norm_eps");
  return c;
}

TrainConfig train_config(const StageArgs& args) {
  const Params& p = args.params;
  TrainConfig t;
  t.model = model_config(p);
  t.load.allow_missing = p.string_list("allow_missing");
  t.load.allow_unexpected = p.string_list("allow_unexpected");
  t.strategy = strategy_from_name(p.string("strategy"));
  t.unfreeze.by_steps = p.string("unfreeze_unit") == "step";
  t.unfreeze.at = p.integer_list("unfreeze_at");
  t.unfreeze.blocks = p.integer_list("unfreeze_blocks");
  t.unfreeze.check();
  t.optimizer = p.string("optimizer");
  t.lr = p.number("lr");
  t.weight_decay = p.number("weight_decay");
  t.beta1 = p.number_list("betas")[0];
  t.beta2 = p.number_list("betas")[1];
  t.eps = p.number("eps");
  t.momentum = p.number("momentum");
  t.nesterov = p.boolean("nesterov");
  t.layer_decay = p.number("layer_decay");
  t.schedule = schedule_kind(p.string("schedule"));
  t.warmup_steps = p.integer("warmup_steps");
  t.warmup_fraction = p.number("warmup_fraction");
  t.min_lr_ratio = p.number("min_lr_ratio");
  t.label_smoothing = p.number("label_smoothing");
  t.clip_grad_norm = p.number("clip_grad_norm");
  t.accumulation = static_cast<int>(p.integer("accumulation"));
  const std::string& precision = p.string("precision");
  const bool cuda = args.device.rfind("cuda", 0) == 0;
  t.precision = precision == "auto" ? (cuda ? Precision::Bf16 : Precision::Fp32) : precision_from_name(precision);
  t.ema_decay = p.number("ema_decay");
  t.mean = p.number_list("mean");
  t.std = p.number_list("std");
  t.device = args.device;
  t.seed = args.seed;
  return t;
}

// A small RGB picture of one sample of a batch (C, H, W), for reports: uint8 as it is,
// normalized floats stretched to 0-255 per image; every k-th pixel so that the longer
// side is at most Thumbnail::kThumbnailSide.
Thumbnail thumbnail_of(const torch::Tensor& chw) {
  torch::Tensor x = chw.detach().to(torch::kCPU, torch::kFloat);
  if (chw.scalar_type() != torch::kByte) {
    const float lo = x.min().item<float>(), hi = x.max().item<float>();
    x = (x - lo) * (255.0f / std::max(hi - lo, 1e-6f));
  }
  const int64_t side = std::max(x.size(1), x.size(2));
  const int64_t stride = (side + Thumbnail::kThumbnailSide - 1) / Thumbnail::kThumbnailSide;
  x = x.slice(1, 0, x.size(1), stride).slice(2, 0, x.size(2), stride);
  if (x.size(0) == 1) x = x.expand({3, x.size(1), x.size(2)});
  const torch::Tensor hwc = x.slice(0, 0, 3).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  Thumbnail t;
  t.height = static_cast<int>(hwc.size(0));
  t.width = static_cast<int>(hwc.size(1));
  t.rgb.assign(hwc.data_ptr<std::uint8_t>(), hwc.data_ptr<std::uint8_t>() + hwc.numel());
  return t;
}

DiagnosticsConfig diagnostics_config(const StageArgs& args, const TrainConfig& t) {
  const Params& p = args.params;
  DiagnosticsConfig c;
  c.train_node = args.node_id;
  c.lr = t.lr;
  c.clip_grad_norm = t.clip_grad_norm;
  c.weight_decay = t.weight_decay;
  c.drop_path = t.model.drop_path;
  c.precision = t.precision == Precision::Fp32 ? "fp32" : t.precision == Precision::Bf16 ? "bf16" : "fp16";
  c.strategy = p.string("strategy");
  c.accumulation = t.accumulation;
  c.depth = t.model.depth;
  // The remedies name other nodes: the batch stage feeding the training input, an "augment" slot.
  if (!args.input_upstream.empty()) {
    for (const UpstreamNode& n : args.input_upstream[kTrainPort]) {
      if (n.plugin == "batch" && c.batch_node.empty()) c.batch_node = n.id;
      if (n.id == "augment") c.augment_node = n.id;
    }
  }
  return c;
}

std::vector<std::string> sources_feeding(const StageArgs& args, int port) {
  std::vector<std::string> ids;
  if (static_cast<std::size_t>(port) < args.input_upstream.size())
    for (const UpstreamNode& n : args.input_upstream[static_cast<std::size_t>(port)])
      if (n.source) ids.push_back(n.id);
  return ids;
}

EarlyStoppingConfig early_stopping_config(const Params& p) {
  EarlyStoppingConfig c;
  c.metric = p.string("early_stopping_metric");
  c.mode = p.string("early_stopping_mode");
  c.patience = p.integer("early_stopping_patience");
  c.min_delta = p.number("early_stopping_min_delta");
  return c;
}

// Running sums between two log lines, or over an epoch.
struct Window {
  double loss_sum = 0, grad_norm_sum = 0;
  std::int64_t correct = 0, count = 0, steps = 0, batches = 0;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  void add(const StepStats& s) {
    loss_sum += s.loss;
    correct += s.correct;
    count += s.count;
    ++batches;
    if (s.stepped) {
      grad_norm_sum += s.grad_norm;
      ++steps;
    }
  }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count(); }
  // Checkpoints keep the sums under "stage/<name>_..." (the start time is not state).
  void save(TrainState& state, const std::string& name) const {
    const std::string p = "stage/" + name + "_";
    state.counters[p + "batches"] = batches;
    state.counters[p + "count"] = count;
    state.counters[p + "correct"] = correct;
    state.counters[p + "steps"] = steps;
    state.values[p + "loss_sum"] = loss_sum;
    state.values[p + "grad_norm_sum"] = grad_norm_sum;
  }
  void restore(const TrainState& state, const std::string& name) {
    const std::string p = "stage/" + name + "_";
    batches = state.counter(p + "batches");
    count = state.counter(p + "count");
    correct = state.counter(p + "correct");
    steps = state.counter(p + "steps");
    loss_sum = state.value(p + "loss_sum");
    grad_norm_sum = state.value(p + "grad_norm_sum");
  }
};

class TrainStage : public OrderedStage {
 public:
  explicit TrainStage(const StageArgs& args)
      : OrderedStage(args),
        config_(train_config(args)),
        pretrained_(args.params.string("pretrained")),
        pretrained_sha256_(args.params.string("pretrained_sha256")),
        total_steps_(args.params.integer("total_steps")),
        log_every_(args.params.integer("log_every")),
        export_(args.params.string("export")),
        threads_(static_cast<int>(args.params.integer("threads"))),
        eval_connected_(args.inputs_connected.size() > kEvalPort && args.inputs_connected[kEvalPort]),
        test_connected_(args.inputs_connected.size() > kTestPort && args.inputs_connected[kTestPort]),
        test_sources_(sources_feeding(args, kTestPort)),
        eval_sources_(sources_feeding(args, kEvalPort)),
        eval_every_steps_(args.params.integer("eval_every_steps")),
        eval_at_epoch_end_(args.params.boolean("eval_at_epoch_end")),
        state_connected_(args.outputs_connected.size() > kStatePort && args.outputs_connected[kStatePort]),
        evaluations_connected_(args.outputs_connected.size() > kEvaluationsPort && args.outputs_connected[kEvaluationsPort]),
        misclassified_top_(static_cast<std::size_t>(args.params.integer("misclassified_top"))),
        label_error_confidence_(args.params.number("label_error_confidence")),
        suspects_(static_cast<std::size_t>(args.params.integer("label_errors_top"))),
        save_every_steps_(args.params.integer("save_every_steps")),
        save_every_epochs_(args.params.integer("save_every_epochs")),
        resume_from_(args.run->resume_from),
        early_(early_stopping_config(args.params)),
        diagnostics_(diagnostics_config(args, config_)),
        control_(args.control) {}

  void start() override {
    started_ = std::chrono::steady_clock::now();
    if (threads_ > 0) torch::set_num_threads(threads_);
    log::info("[", node_id(), "] ", torch::get_num_threads(), " compute thread(s), device ", config_.device, ", ",
              strategy_name(config_.strategy), ", ", config_.optimizer, " lr ", config_.lr);
    if (!resume_from_.empty()) {
      prepare_resume();
      return;
    }
    if (!pretrained_.empty()) config_.pretrained = resolve_pretrained(pretrained_, pretrained_sha256_);
    if (config_.model.num_classes > 0) build({});
  }

  void process(Message in, Emitter& out) override {
    queue_[static_cast<std::size_t>(in.port)].push_back(std::move(in));
    pump(out);
  }

  void epoch_end(int port, std::uint64_t epoch, Emitter& out) override {
    Message marker;
    marker.signal = Signal::EpochEnd;
    marker.epoch = epoch;
    marker.port = port;
    queue_[static_cast<std::size_t>(port)].push_back(std::move(marker));
    pump(out);
  }

  // The end of the training stream is queued like its epoch ends, so that training is
  // over only once every queued batch has been trained on.
  void input_ended(int port, Emitter& out) override {
    if (port != kTrainPort) return;
    Message marker;
    marker.signal = Signal::End;
    marker.port = port;
    queue_[kTrainPort].push_back(std::move(marker));
    pump(out);
  }

  void finish(Emitter& out) override {
    pump(out);
    log::clear_status();
    if (trainer_) report_suspects(out);
    if (trainer_) emit_state(out, "final");
    if (!queue_[kEvalPort].empty() && eval_every_steps_ == 0) {
      log::warn("[", node_id(), "] the eval source produced more epochs than there were training epochs; the extra ",
                "ones were not evaluated (give it as many epochs as the training source)");
    }
    if (!trainer_) throw std::runtime_error("no training batch arrived");
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count() / 60;
    if (tested_) {
      log::info("[", node_id(), "] test split, per class:");
      for (const auto& line : test_->table(class_names_)) log::info("    ", line);
      log::info("[", node_id(), "] result: test accuracy ", test_->accuracy(), " and loss ", test_->loss(), " on ",
                test_->count(), " test samples after ", trainer_->step(), " optimizer steps, ", minutes, " min",
                last_eval_ ? " (last validation accuracy " + std::to_string(last_eval_->accuracy()) + ")" : std::string());
    } else if (evaluations_ > 0 && !last_eval_) {
      // Resumed from a checkpoint taken after the last evaluation: nothing was left to do.
      const Metrics* last = nullptr;
      for (const Metrics& m : history_)
        if (m.scope == "eval") last = &m;
      log::info("[", node_id(), "] the checkpoint was taken after the last evaluation: nothing left to train");
      if (last) {
        log::info("[", node_id(), "] result: accuracy ", last->values.at("accuracy"), " and loss ", last->values.at("loss"),
                  " after ", evaluations_, " epoch(s), ", trainer_->step(), " optimizer steps (from the checkpoint)");
      }
    } else if (evaluations_ > 0) {
      log::info("[", node_id(), "] final evaluation, per class:");
      for (const auto& line : last_eval_->table(class_names_)) log::info("    ", line);
      log::info("[", node_id(), "] result: accuracy ", last_eval_->accuracy(), " and loss ", last_eval_->loss(), " on ",
                last_eval_->count(), " eval samples after ", evaluations_, " epoch(s), ", trainer_->step(),
                " optimizer steps, ", minutes, " min",
                trainer_->has_ema() ? " (EMA accuracy " + std::to_string(last_ema_eval_->accuracy()) + ")" : std::string());
    } else {
      log::info("[", node_id(), "] done: ", trainer_->step(), " optimizer steps, ", minutes, " min (no eval input)");
    }
    if (!export_.empty()) {
      export_vit_huggingface(trainer_->model(), export_, class_names_);
      log::info("[", node_id(), "] exported the model with Hugging Face names to ", export_);
    }
  }

  // Interrupted, or another stage failed: hand the last consistent state to the
  // checkpoint stage (not when this stage's own step threw half-way).
  void drain(StopReason reason, Emitter& out) override {
    log::clear_status();
    if (!trainer_ || in_step_) return;
    emit_state(out, "stop");
    log::info("[", node_id(), "] run ", stop_reason_name(reason), ": state at step ", trainer_->step(), " handed on for saving");
  }

  void stop(StopReason reason) override {
    if (reason != StopReason::Finished && trainer_ && !export_.empty())
      log::warn("[", node_id(), "] run ", stop_reason_name(reason), " at step ", trainer_->step(), ": nothing exported");
  }

 private:
  // Serves queued events in the order the evaluation protocol allows (see the top).
  void pump(Emitter& out) {
    for (;;) {
      if (ended_) {  // early stopping: what is still in flight is not used; its slots go back
        queue_[kTrainPort].clear();
        queue_[kEvalPort].clear();
        evaluating_ = false;
        training_done_ = true;  // the test split, if any, is still evaluated
      }
      if (training_done_ && !evaluating_) queue_[kEvalPort].clear();  // epochs to spare, unused
      const int port = evaluating_ ? kEvalPort : training_done_ ? kTestPort : kTrainPort;
      auto& q = queue_[port];
      if (q.empty()) return;
      Message m = std::move(q.front());
      q.pop_front();
      if (port == kEvalPort) {
        if (m.is_data()) eval_batch(m);
        else end_evaluation(out);
      } else if (port == kTestPort) {
        if (m.is_data()) test_batch(m);
        else if (m.signal == Signal::EpochEnd) end_test(out);
      } else if (m.signal == Signal::End) {
        training_done_ = true;
        // An eval source repeating for step evaluations has epochs to spare: end it.
        if (eval_every_steps_ > 0 && control_) control_->end_sources(eval_sources_);
      } else {
        if (m.is_data()) train_batch(m, out);
        else end_train_epoch(m.epoch, out);
      }
    }
  }

  void build(const Batch* first) {
    if (first && first->dataset) class_names_ = first->dataset->classes;
    if (config_.model.num_classes == 0) {
      if (class_names_.empty())
        throw std::runtime_error("num_classes is 0 (from the data) but the batches do not say how many classes there are; set num_classes");
      config_.model.num_classes = static_cast<int>(class_names_.size());
    }
    log::info("[", node_id(), "] model: ", config_.model.describe());
    trainer_ = std::make_unique<Trainer>(config_);
    if (resume_) apply_resume();
    log::info("[", node_id(), "] ", trainer_->trainable_parameters(), " trainable parameters in ", trainer_->groups().size(),
              " optimizer groups");
  }

  void train_batch(const Message& m, Emitter& out) {
    const auto& batch = m.as<Batch>();
    if (!trainer_) build(&batch);
    if (class_names_.empty() && batch.dataset) class_names_ = batch.dataset->classes;
    if (!schedule_set_) set_schedule(batch);
    // The label check watches every epoch but the first (a random model's guesses say nothing).
    const bool watch_labels = evaluations_connected_ && train_epochs_ > 0 && !batch.targets.defined() &&
                              label_error_confidence_ < 1 && (batch.epoch > 0 || train_epochs_ == 1);
    outcomes_.clear();
    in_step_ = true;
    const StepStats s = guarded_step(batch, watch_labels ? &outcomes_ : nullptr);
    in_step_ = false;
    if (watch_labels) collect_suspects(batch);
    changed_since_state_ = true;
    if (batch.dataset) positions_[batch.dataset->source] = {batch.epoch, batch.next_position};
    next_epoch_ = batch.epoch;
    window_.add(s);
    epoch_.add(s);
    show_progress(batch.epoch);
    if (s.stepped && trainer_->step() % log_every_ == 0) report_window(batch.epoch, out);
    // A step evaluation starts before the step's snapshot, which thus records it as due.
    if (s.stepped && eval_connected_ && eval_every_steps_ > 0 && trainer_->step() % eval_every_steps_ == 0 &&
        !(eval_at_epoch_end_ && batch.steps_per_epoch > 0 && (batch.step + 1) % batch.steps_per_epoch == 0))
      begin_evaluation(batch.epoch, false);
    if (s.stepped && save_every_steps_ > 0 && trainer_->step() % save_every_steps_ == 0) emit_state(out, "step");
  }

  // The train step, with the diagnosis and its remedies when it fails the usual ways.
  StepStats guarded_step(const Batch& batch, std::vector<Trainer::Outcome>* outcomes) {
    try {
      return trainer_->train_batch(batch.images, batch.labels, batch.targets, static_cast<std::int64_t>(batch.epoch), outcomes);
    } catch (const DivergedError& e) {
      throw std::runtime_error(diagnostics_.diverged(e.what()).text());
    } catch (const c10::OutOfMemoryError& e) {
      throw std::runtime_error(diagnostics_.out_of_memory(first_line(e.what())).text());
    } catch (const std::bad_alloc&) {
      throw std::runtime_error(diagnostics_.out_of_memory("std::bad_alloc").text());
    } catch (const c10::Error& e) {
      const std::string what = e.what();
      if (what.find("can't allocate memory") != std::string::npos || what.find("out of memory") != std::string::npos)
        throw std::runtime_error(diagnostics_.out_of_memory(first_line(what)).text());
      throw;
    }
  }

  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  void note(Emitter& out, const Finding& finding) {
    log::warn("[", node_id(), "] ", finding.text());
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "note";
    metrics->epoch = next_epoch_;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->note = finding.text();
    emit(out, metrics);
  }

  // The live status line on a terminal (log::status), at most 4 times a second.
  void show_progress(std::uint64_t epoch) {
    if (!log::interactive()) return;
    const auto now = std::chrono::steady_clock::now();
    if (progress_steps_from_ < 0) {
      progress_steps_from_ = trainer_->step();
      progress_since_ = now;
    }
    if (now - last_progress_ < std::chrono::milliseconds(250)) return;
    last_progress_ = now;
    const std::int64_t step = trainer_->step(), total = trainer_->total_steps();
    const double secs = std::chrono::duration<double>(now - progress_since_).count();
    const std::int64_t done_here = step - progress_steps_from_;
    std::string eta = "--:--";
    if (done_here > 0 && total > step) {
      const auto left = static_cast<long>(secs / static_cast<double>(done_here) * static_cast<double>(total - step));
      char text[32];
      std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
      eta = text;
    }
    const std::string epochs = train_epochs_ > 0 ? "/" + std::to_string(train_epochs_) : "";
    log::status("epoch " + std::to_string(epoch + 1) + epochs + "  step " + std::to_string(step) + "/" +
                std::to_string(total) + "  loss " + log::fixed(window_.batches ? window_.loss_sum / window_.batches : 0, 4) +
                "  acc " + log::fixed(window_.count ? static_cast<double>(window_.correct) / window_.count : 0, 3) +
                "  lr " + log::fixed(trainer_->base_lr_now() * 1e3, 3) + "e-3  " +
                std::to_string(static_cast<long>(window_.seconds() > 0 ? window_.count / window_.seconds() : 0)) +
                " img/s  ETA " + eta);
  }

  void set_schedule(const Batch& batch) {
    std::int64_t total = total_steps_;
    if (total == 0) {
      if (batch.steps_per_epoch == 0 || !batch.dataset)
        throw std::runtime_error("total_steps is 0 (from the data) but the batches do not say how long an epoch is; set total_steps");
      const auto micro = static_cast<std::int64_t>(batch.steps_per_epoch * batch.dataset->epochs);
      total = (micro + config_.accumulation - 1) / config_.accumulation;
      train_epochs_ = batch.dataset->epochs;
    }
    if (resume_ && resume_->state.counter("trainer/total_steps") != total) {
      log::warn("[", node_id(), "] the schedule now has ", total, " optimizer steps, the checkpoint's had ",
                resume_->state.counter("trainer/total_steps"), ": the data or batch size changed, the run will not match");
    }
    trainer_->set_total_steps(total);
    diagnostics_.set_run(total, LrSchedule::make(config_.schedule, total, config_.warmup_steps, config_.warmup_fraction, 0).warmup_steps,
                         batch.images.size(0), trainer_->model()->config.num_classes);
    schedule_set_ = true;
    log::info("[", node_id(), "] ", total, " optimizer steps (batch ", batch.images.size(0), " x accumulation ",
              config_.accumulation, "), warmup ", LrSchedule::make(config_.schedule, total, config_.warmup_steps,
                                                                     config_.warmup_fraction, 0).warmup_steps);
  }

  void report_window(std::uint64_t epoch, Emitter& out) {
    const double secs = window_.seconds();
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "train";
    metrics->epoch = epoch;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = {{"loss", window_.loss_sum / window_.batches},
                       {"accuracy", static_cast<double>(window_.correct) / window_.count},
                       {"lr", trainer_->base_lr_now()},
                       {"grad_norm", window_.steps ? window_.grad_norm_sum / window_.steps : 0.0},
                       {"images_per_s", secs > 0 ? window_.count / secs : 0.0}};
    // The learning rate of every optimizer group: "lr_layer3" (no decay: "lr_layer3_no_decay").
    for (std::size_t g = 0; g < trainer_->groups().size(); ++g) {
      const ParamGroup& group = trainer_->groups()[g];
      metrics->values["lr_layer" + std::to_string(group.layer) + (group.decay ? "" : "_no_decay")] = trainer_->lr(g);
    }
    log::info("[", node_id(), "] epoch ", epoch, " step ", trainer_->step(), "/", trainer_->total_steps(), "  loss ",
              metrics->values["loss"], "  acc ", metrics->values["accuracy"], "  lr ", metrics->values["lr"],
              "  grad_norm ", metrics->values["grad_norm"], "  ", static_cast<long>(metrics->values["images_per_s"]),
              " img/s");
    emit(out, metrics);
    window_ = Window();
    if (auto finding = diagnostics_.on_train_window(trainer_->step(), metrics->values["loss"])) note(out, *finding);
  }

  void end_train_epoch(std::uint64_t epoch, Emitter& out) {
    if (!trainer_) return;
    for (auto& [source, at] : positions_)
      if (source != eval_source_ && at.epoch == epoch) at = {epoch + 1, 0};
    next_epoch_ = epoch + 1;
    changed_since_state_ = true;
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "train_epoch";
    metrics->epoch = epoch;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = {{"loss", epoch_.batches ? epoch_.loss_sum / epoch_.batches : 0.0},
                       {"accuracy", epoch_.count ? static_cast<double>(epoch_.correct) / epoch_.count : 0.0},
                       {"seconds", epoch_.seconds()}};
    last_train_epoch_loss_ = metrics->values["loss"];
    log::info("[", node_id(), "] epoch ", epoch, " done: train loss ", metrics->values["loss"], ", accuracy ",
              metrics->values["accuracy"], ", ", epoch_.seconds(), " s");
    emit(out, metrics);
    epoch_ = Window();
    if (!eval_connected_ || !eval_at_epoch_end_ || (eval_epochs_ > 0 && evaluations_ >= eval_epochs_)) {
      if (epoch_save_due(epoch)) emit_state(out, "epoch");
      return;
    }
    begin_evaluation(epoch, true);
  }

  void begin_evaluation(std::uint64_t epoch, bool after_epoch_end) {
    evaluating_ = true;
    eval_epoch_ = epoch;
    eval_after_epoch_end_ = after_epoch_end;
    const int classes = trainer_->model()->config.num_classes;
    eval_ = std::make_unique<ClassificationMetrics>(classes);
    ema_eval_ = std::make_unique<ClassificationMetrics>(classes);
    worst_ = std::make_unique<WorstSamples>(misclassified_top_);
    eval_started_ = std::chrono::steady_clock::now();
  }

  bool epoch_save_due(std::uint64_t epoch) const {
    return save_every_epochs_ > 0 && (epoch + 1) % static_cast<std::uint64_t>(save_every_epochs_) == 0;
  }

  void eval_batch(const Message& m) {
    const auto& batch = m.as<Batch>();
    if (batch.dataset && eval_epochs_ == 0) check_eval_epochs(*batch.dataset);
    if (batch.dataset) eval_source_ = batch.dataset->source;
    if (evaluations_connected_) {
      outcomes_.clear();
      trainer_->evaluate_batch(batch.images, batch.labels, *eval_, false, &outcomes_);
      keep_worst(batch);
    } else {
      trainer_->evaluate_batch(batch.images, batch.labels, *eval_);
    }
    if (trainer_->has_ema()) trainer_->evaluate_batch(batch.images, batch.labels, *ema_eval_, true);
  }

  // The label-error check. A sample the model keeps assigning to another class, with
  // high confidence, over the epochs is a suspect; counting every epoch (not only the
  // last) keeps the suspects the model ends up memorizing. Decided in the last epoch,
  // where every sample passes once more (and its thumbnail is taken).
  void collect_suspects(const Batch& batch) {
    const torch::Tensor labels = batch.labels.to(torch::kCPU, torch::kLong).contiguous();
    const torch::Tensor indices = batch.indices.to(torch::kCPU, torch::kLong).contiguous();
    const auto* label = labels.data_ptr<std::int64_t>();
    const auto* index = indices.data_ptr<std::int64_t>();
    const bool last_epoch = batch.epoch + 1 == train_epochs_;
    for (std::size_t i = 0; i < outcomes_.size(); ++i) {
      const auto& o = outcomes_[i];
      LabelWatch& w = label_watch_[index[i]];
      ++w.seen;
      if (o.predicted != label[i]) {
        ++w.wrong;
        w.confidence_sum += o.confidence;
        w.predicted = o.predicted;
      }
      if (!last_epoch || 2 * w.wrong <= w.seen) continue;  // right at least half the time
      const double confidence = w.confidence_sum / w.wrong;
      const double score = static_cast<double>(w.wrong) / w.seen + confidence;
      if (confidence < label_error_confidence_ || !suspects_.wants(score)) continue;
      suspects_.add(sample_of(batch, i, label[i], w.predicted, confidence, score));
    }
  }

  void report_suspects(Emitter& out) {
    if (!evaluations_connected_ || label_error_confidence_ >= 1) return;
    auto final = last_evaluation_ ? std::make_shared<Evaluation>(*last_evaluation_) : std::make_shared<Evaluation>();
    final->classes = class_names_;
    final->suspected_label_errors = suspects_.take();
    const auto& found = final->suspected_label_errors;
    auto name = [&](std::int64_t c) {
      return c >= 0 && static_cast<std::size_t>(c) < class_names_.size() ? class_names_[c] : std::to_string(c);
    };
    log::info("[", node_id(), "] label check: ", found.size(), " training sample(s) the model assigned to another class in ",
              "most epochs, with >= ", log::fixed(100 * label_error_confidence_, 0), "% mean confidence (suspected label errors",
              found.empty() ? ")" : "; strongest first):");
    for (std::size_t i = 0; i < found.size() && i < 5; ++i)
      log::info("    ", found[i].key, ": labelled ", name(found[i].label), ", looks like ", name(found[i].predicted), " (",
                log::fixed(100 * found[i].confidence, 1), "%)");
    out.emit(kEvaluationsPort, std::move(final), next_epoch_, evaluation_index_++);
  }

  // The test split: evaluated once, after training (and after early stopping).
  void test_batch(const Message& m) {
    const auto& batch = m.as<Batch>();
    if (!trainer_) return;
    if (!test_) {
      test_ = std::make_unique<ClassificationMetrics>(trainer_->model()->config.num_classes);
      test_ema_ = std::make_unique<ClassificationMetrics>(trainer_->model()->config.num_classes);
      worst_ = std::make_unique<WorstSamples>(misclassified_top_);
      test_started_ = std::chrono::steady_clock::now();
      log::info("[", node_id(), "] training done: evaluating the test split");
    }
    outcomes_.clear();
    trainer_->evaluate_batch(batch.images, batch.labels, *test_, false, evaluations_connected_ ? &outcomes_ : nullptr);
    if (evaluations_connected_) keep_worst(batch);
    if (trainer_->has_ema()) trainer_->evaluate_batch(batch.images, batch.labels, *test_ema_, true);
  }

  void end_test(Emitter& out) {
    if (!test_) return;
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "test";
    metrics->epoch = next_epoch_;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = headline(*test_);
    if (trainer_->has_ema()) metrics->values["ema_accuracy"] = test_ema_->accuracy();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - test_started_).count();
    log::info("[", node_id(), "] test: loss ", test_->loss(), ", accuracy ", test_->accuracy(), ", top-5 ",
              test_->top_k_accuracy(), ", macro F1 ", test_->macro_f1(), " (", test_->count(), " samples, ", secs, " s)");
    if (evaluations_connected_) out.emit(kEvaluationsPort, evaluation_of("test", *metrics, *test_, *test_ema_), metrics->epoch, evaluation_index_++);
    emit(out, metrics);
    tested_ = true;
  }

  static Misclassified sample_of(const Batch& batch, std::size_t i, std::int64_t label, std::int64_t predicted,
                                 double confidence, double loss) {
    Misclassified m;
    m.key = i < batch.keys.size() ? batch.keys[i] : "#" + std::to_string(i);
    m.label = label;
    m.predicted = predicted;
    m.confidence = confidence;
    m.loss = loss;
    m.thumbnail = thumbnail_of(batch.images[static_cast<std::int64_t>(i)]);
    return m;
  }

  // Headline numbers of an evaluation, as metrics values.
  static std::map<std::string, double> headline(const ClassificationMetrics& m) {
    return {{"loss", m.loss()},
            {"accuracy", m.accuracy()},
            {"top5_accuracy", m.top_k_accuracy()},
            {"macro_f1", m.macro_f1()},
            {"samples", static_cast<double>(m.count())}};
  }

  // The full record of an evaluation just finished, for the evaluations output.
  std::shared_ptr<Evaluation> evaluation_of(const char* split, const Metrics& headline, const ClassificationMetrics& main,
                                            const ClassificationMetrics& ema) {
    auto e = std::make_shared<Evaluation>();
    e->split = split;
    e->epoch = headline.epoch;
    e->step = headline.step;
    e->classes = class_names_;
    e->metrics = std::make_shared<ClassificationMetrics>(main);
    if (trainer_->has_ema()) e->ema_metrics = std::make_shared<ClassificationMetrics>(ema);
    e->worst = worst_->take();
    return e;
  }

  void keep_worst(const Batch& batch) {
    const torch::Tensor labels = batch.labels.to(torch::kCPU, torch::kLong).contiguous();
    const auto* label = labels.data_ptr<std::int64_t>();
    for (std::size_t i = 0; i < outcomes_.size(); ++i) {
      const auto& o = outcomes_[i];
      if (o.predicted == label[i] || !worst_->wants(o.loss)) continue;
      worst_->add(sample_of(batch, i, label[i], o.predicted, o.confidence, o.loss));
    }
  }

  void check_eval_epochs(const DatasetInfo& info) {
    eval_epochs_ = info.epochs;
    if (eval_every_steps_ > 0) {
      const std::uint64_t needed = (eval_at_epoch_end_ ? train_epochs_ : 0) +
                                   static_cast<std::uint64_t>(trainer_->total_steps() / eval_every_steps_);
      if (eval_epochs_ < needed) {
        throw std::runtime_error("eval source '" + info.source + "' runs " + std::to_string(eval_epochs_) +
                                 " epoch(s) but this run evaluates up to " + std::to_string(needed) + " times (every " +
                                 std::to_string(eval_every_steps_) + " steps" + (eval_at_epoch_end_ ? " and after each epoch" : "") +
                                 "): set its epochs to " + std::to_string(needed) + " or more (the spare ones are not read)");
      }
      return;
    }
    if (train_epochs_ > 0 && eval_epochs_ != train_epochs_) {
      log::warn("[", node_id(), "] eval source '", info.source, "' runs ", eval_epochs_, " epoch(s) and training ",
                train_epochs_, ": the model is evaluated after the first ", std::min(eval_epochs_, train_epochs_),
                " training epoch(s) only (set its epochs to ", train_epochs_, ")");
    }
  }

  void end_evaluation(Emitter& out) {
    evaluating_ = false;
    ++evaluations_;
    changed_since_state_ = true;
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "eval";
    metrics->epoch = eval_epoch_;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = headline(*eval_);
    // The mean training loss of the epoch so far, to compare with.
    metrics->values["train_loss"] =
        eval_after_epoch_end_ || epoch_.batches == 0 ? last_train_epoch_loss_ : epoch_.loss_sum / epoch_.batches;
    if (trainer_->has_ema()) {
      metrics->values["ema_loss"] = ema_eval_->loss();
      metrics->values["ema_accuracy"] = ema_eval_->accuracy();
    }
    last_eval_ = std::move(eval_);
    last_ema_eval_ = std::move(ema_eval_);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_started_).count();
    log::info("[", node_id(), "] eval ", eval_after_epoch_end_ ? "after epoch " : "at step " + std::to_string(metrics->step) + ", epoch ",
              metrics->epoch, ": loss ", last_eval_->loss(), ", accuracy ",
              last_eval_->accuracy(), ", top-5 ", last_eval_->top_k_accuracy(), ", macro F1 ", last_eval_->macro_f1(), " (",
              last_eval_->count(), " samples, ", secs, " s)",
              trainer_->has_ema() ? ", EMA accuracy " + std::to_string(last_ema_eval_->accuracy()) : std::string());
    if (!eval_source_.empty()) positions_[eval_source_] = {evaluations_, 0};
    if (evaluations_connected_) {
      auto evaluation = evaluation_of("val", *metrics, *last_eval_, *last_ema_eval_);
      last_evaluation_ = evaluation;
      out.emit(kEvaluationsPort, std::move(evaluation), metrics->epoch, evaluation_index_++);
    }
    const bool stop_now = early_.update(metrics->values);
    emit(out, metrics);
    const double train_loss = metrics->values["train_loss"];
    if (auto finding = diagnostics_.on_evaluation(trainer_->step(), train_loss, last_eval_->loss(),
                                                  last_eval_->accuracy()))
      note(out, *finding);
    if (early_.enabled()) {
      log::info("[", node_id(), "] early stopping: best eval ", early_.metric(), " ", early_.best(), ", ",
                early_.evaluations_without_improvement(), " evaluation(s) without improvement");
    }
    if (eval_after_epoch_end_ && epoch_save_due(metrics->epoch)) emit_state(out, "epoch");
    if (stop_now) {
      const std::string why = early_.reason();
      log::info("[", node_id(), "] ", why, ": ending the run");
      ended_ = true;
      if (control_) control_->end_run(node_id(), why, test_sources_);
    }
  }

  void emit(Emitter& out, std::shared_ptr<Metrics> metrics) {
    const std::uint64_t epoch = metrics->epoch;
    history_.push_back(*metrics);
    out.emit(kMetricsPort, std::move(metrics), epoch, metrics_index_++);
  }

  // A snapshot of everything needed to continue exactly here (see train_state.hpp).
  void emit_state(Emitter& out, const char* reason) {
    if (!state_connected_ || !trainer_ || !changed_since_state_) return;
    changed_since_state_ = false;
    auto state = std::make_shared<TrainState>();
    state->reason = reason;
    state->node = node_id();
    state->step = static_cast<std::uint64_t>(trainer_->step());
    state->epoch = next_epoch_;
    state->model_config = vit_config_to_json(trainer_->model()->config);
    state->classes = class_names_;
    trainer_->save_state(*state);
    auto& c = state->counters;
    c["stage/evaluations"] = static_cast<std::int64_t>(evaluations_);
    c["stage/evaluating"] = evaluating_ ? 1 : 0;
    c["stage/eval_epoch"] = static_cast<std::int64_t>(eval_epoch_);
    c["stage/eval_after_epoch_end"] = eval_after_epoch_end_ ? 1 : 0;
    c["stage/metrics_index"] = static_cast<std::int64_t>(metrics_index_);
    c["stage/early_stopping_bad"] = early_.evaluations_without_improvement();
    c["stage/early_stopping_best_at"] = early_.best_evaluation();
    c["stage/early_stopping_seen"] = early_.seen();
    epoch_.save(*state, "epoch");
    window_.save(*state, "window");
    auto& v = state->values;
    v["stage/early_stopping_best"] = early_.best();
    state->positions = positions_;
    state->history = history_;
    save_label_watch(*state);
    out.emit(kStatePort, std::move(state), next_epoch_, state_index_++);
  }

  // start(): read the checkpoint and build the model it holds.
  void prepare_resume() {
    resume_ = std::make_unique<CheckpointFile>(read_checkpoint(resume_from_));
    const TrainState& st = resume_->state;
    if (st.node != node_id()) {
      throw std::runtime_error(resume_from_ + " holds the state of node '" + st.node + "', not of '" + node_id() +
                               "' (resume with the pipeline it was saved from)");
    }
    class_names_ = st.classes;
    VitConfig saved = vit_config_from_json(st.model_config);
    if (config_.model.num_classes == 0) config_.model.num_classes = saved.num_classes;
    if (vit_config_to_json(config_.model) != st.model_config) {
      throw std::runtime_error("the pipeline's model (" + config_.model.describe() + ") is not the checkpoint's (" +
                               saved.describe() + "); resume with the settings it was saved with");
    }
    build(nullptr);  // weights come from the checkpoint, not from `pretrained`
  }

  // The label check's per-sample counts travel in the checkpoint as five columns.
  void save_label_watch(TrainState& state) const {
    if (label_watch_.empty()) return;
    const auto n = static_cast<std::int64_t>(label_watch_.size());
    torch::Tensor index = torch::empty({n}, torch::kLong), predicted = torch::empty({n}, torch::kLong);
    torch::Tensor counts = torch::empty({n, 2}, torch::kLong), confidence = torch::empty({n}, torch::kDouble);
    std::int64_t k = 0;
    for (const auto& [i, w] : label_watch_) {
      index[k] = i;
      predicted[k] = w.predicted;
      counts[k][0] = w.seen;
      counts[k][1] = w.wrong;
      confidence[k] = w.confidence_sum;
      ++k;
    }
    state.tensors.emplace_back("label_check/index", index);
    state.tensors.emplace_back("label_check/predicted", predicted);
    state.tensors.emplace_back("label_check/seen_wrong", counts);
    state.tensors.emplace_back("label_check/confidence_sum", confidence);
  }

  void load_label_watch(const TrainState& state) {
    const at::Tensor* index = state.find("label_check/index");
    if (!index) return;
    const auto i = index->contiguous(), p = state.find("label_check/predicted")->contiguous();
    const auto c = state.find("label_check/seen_wrong")->contiguous();
    const auto f = state.find("label_check/confidence_sum")->contiguous();
    for (std::int64_t k = 0; k < i.size(0); ++k) {
      LabelWatch& w = label_watch_[i.data_ptr<std::int64_t>()[k]];
      w.predicted = p.data_ptr<std::int64_t>()[k];
      w.seen = static_cast<std::int32_t>(c.data_ptr<std::int64_t>()[2 * k]);
      w.wrong = static_cast<std::int32_t>(c.data_ptr<std::int64_t>()[2 * k + 1]);
      w.confidence_sum = f.data_ptr<double>()[k];
    }
  }

  void apply_resume() {
    const TrainState& st = resume_->state;
    trainer_->load_state(st);
    evaluations_ = static_cast<std::uint64_t>(st.counter("stage/evaluations"));
    metrics_index_ = static_cast<std::uint64_t>(st.counter("stage/metrics_index"));
    epoch_.restore(st, "epoch");
    window_.restore(st, "window");  // the log window in progress (its images/s restarts)
    early_.restore(st.value("stage/early_stopping_best"), st.counter("stage/early_stopping_bad"),
                   st.counter("stage/early_stopping_best_at", -1), st.counter("stage/early_stopping_seen"));
    positions_ = st.positions;
    next_epoch_ = st.epoch;
    load_label_watch(st);
    // The diagnostics see the run so far again (before the first evaluation or batch of this process).
    const std::int64_t total = st.counter("trainer/total_steps");
    diagnostics_.set_run(total, LrSchedule::make(config_.schedule, total, config_.warmup_steps, config_.warmup_fraction, 0).warmup_steps,
                         0, trainer_->model()->config.num_classes);
    diagnostics_.replay(st.history);
    history_ = st.history;
    if (st.counter("stage/evaluating"))
      begin_evaluation(static_cast<std::uint64_t>(st.counter("stage/eval_epoch")), st.counter("stage/eval_after_epoch_end", 1) != 0);
    changed_since_state_ = false;  // the state is the checkpoint's until the next batch
    log::info("[", node_id(), "] resumed from ", resume_from_, " (", st.reason, " checkpoint): step ", st.step,
              ", epoch ", st.epoch, ", ", evaluations_, " evaluation(s) done");
  }

  TrainConfig config_;
  std::string pretrained_, pretrained_sha256_;
  std::int64_t total_steps_;
  std::int64_t log_every_;
  std::string export_;
  int threads_;
  bool eval_connected_;
  bool test_connected_;
  std::vector<std::string> test_sources_;  // kept running by early stopping
  std::vector<std::string> eval_sources_;  // ended when training is done (step evaluations)
  std::int64_t eval_every_steps_;
  bool eval_at_epoch_end_;
  std::uint64_t eval_epoch_ = 0;         // the training epoch of the evaluation in progress
  bool eval_after_epoch_end_ = true;     // or at a step inside it
  bool training_done_ = false;
  bool tested_ = false;
  std::unique_ptr<ClassificationMetrics> test_, test_ema_;
  std::chrono::steady_clock::time_point test_started_;
  std::unique_ptr<Trainer> trainer_;
  std::vector<std::string> class_names_;
  bool schedule_set_ = false;
  std::deque<Message> queue_[3];
  bool evaluating_ = false;
  std::uint64_t train_epochs_ = 0, eval_epochs_ = 0, evaluations_ = 0;
  std::unique_ptr<ClassificationMetrics> eval_, ema_eval_, last_eval_, last_ema_eval_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point eval_started_;
  Window window_, epoch_;
  std::uint64_t metrics_index_ = 0;
  // Checkpoints, resuming and early stopping
  bool state_connected_;
  bool evaluations_connected_;
  std::size_t misclassified_top_;
  std::unique_ptr<WorstSamples> worst_;
  double label_error_confidence_;
  WorstSamples suspects_;
  std::shared_ptr<const Evaluation> last_evaluation_;
  std::uint64_t evaluation_index_ = 0;
  struct LabelWatch {
    std::int32_t seen = 0, wrong = 0;
    std::int64_t predicted = -1;  // the latest other class
    double confidence_sum = 0;    // over the wrong sightings
  };
  std::unordered_map<std::int64_t, LabelWatch> label_watch_;  // by dataset index
  std::vector<Trainer::Outcome> outcomes_;
  std::int64_t save_every_steps_, save_every_epochs_;
  std::string resume_from_;
  std::unique_ptr<CheckpointFile> resume_;
  std::map<std::string, StreamPosition> positions_;  // source -> where its stream continues
  std::string eval_source_;
  std::uint64_t next_epoch_ = 0;
  std::uint64_t state_index_ = 0;
  std::vector<Metrics> history_;
  EarlyStopping early_;
  Diagnostics diagnostics_;
  double last_train_epoch_loss_ = 0;
  RunControl* control_;
  bool ended_ = false;    // early stopping ended the run
  bool in_step_ = false;
  bool changed_since_state_ = true;
  // The status line
  std::int64_t progress_steps_from_ = -1;
  std::chrono::steady_clock::time_point progress_since_, last_progress_;  // trained or evaluated since the last snapshot  // a train step is running (or threw): the state is not consistent
};

}  // namespace

std::unique_ptr<Stage> make_train_stage(const StageArgs& args) { return std::make_unique<TrainStage>(args); }

}  // namespace flowrun
