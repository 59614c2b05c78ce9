// train: fine-tunes (or trains) a ViT on the batches of its "train" input, and lends
// the model to evaluate nodes at every evaluation point (output "model": every
// eval_every_steps steps and after each epoch) and once after training (output
// "final_model", a test split).
//
// Lending, not copying: a ModelSnapshot holds the live model, and the stage does not
// step again until the snapshot is released (stages/messages/model_snapshot.hpp).
// Training batches that arrive meanwhile wait in a queue (holding their prefetch
// slots); the release wakes the stage (RunControl::wake), which takes the evaluate
// nodes' answers: the numbers go into the run's metrics and evaluations streams, to
// early stopping, the diagnostics and the checkpoints. So every evaluation sees the
// weights of its step and every decision on it is taken before the next step,
// whatever the thread timing, as when the evaluation ran inside this stage.
//
// The parts live beside it: Trainer (the step), LabelCheck, Diagnostics,
// EarlyStopping, TrainWindow (log and epoch sums), ProgressLine, train_params.cpp
// (parameters -> configurations).
#include <algorithm>
#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string_view>

#include "flowrun/logging.hpp"
#include "lib/distributed/step_agreement.hpp"
#include "lib/model/hub.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/messages/model_snapshot.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/diagnostics.hpp"
#include "stages/train/early_stopping.hpp"
#include "stages/train/label_check.hpp"
#include "stages/train/progress_line.hpp"
#include "stages/train/train_params.hpp"
#include "stages/train/train_plugins.hpp"
#include "stages/train/train_window.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {
namespace {

class TrainStage : public OrderedStage {
  // An evaluation point: what the stage knew when it lent the model.
  struct Lent {
    bool final = false;  // after training (final_model), or at an evaluation point (model)
    std::uint64_t epoch = 0;
    bool after_epoch_end = true;
    double train_loss = 0;  // the mean training loss of the epoch (so far), to compare with
  };

 public:
  explicit TrainStage(const StageArgs& args)
      : OrderedStage(args),
        options_(read_options<TrainOptions>(args.params)),
        config_(train_config(args, options_)),
        pretrained_(options_.pretrained),
        pretrained_sha256_(options_.pretrained_sha256),
        pipeline_json_(args.run ? args.run->resolved_json : std::string()),
        total_steps_(options_.total_steps),
        log_every_(options_.log_every),
        export_(options_.export_folder),
        threads_(options_.threads),
        model_connected_(output_connected(args, kModelPort)),
        final_model_connected_(output_connected(args, kFinalModelPort)),
        train_sources_(sources_feeding(args, kTrainPort)),
        eval_every_steps_(options_.eval_every_steps),
        eval_at_epoch_end_(options_.eval_at_epoch_end),
        state_connected_(output_connected(args, kStatePort)),
        evaluations_connected_(output_connected(args, kEvaluationsPort)),
        save_every_steps_(options_.save_every_steps),
        save_every_epochs_(options_.save_every_epochs),
        resume_from_(args.run->resume_from),
        saved_states_(args.run->saved_states),
        control_(args.control),
        label_check_(options_.label_error_confidence, static_cast<std::size_t>(options_.label_errors_top)),
        early_(early_stopping_config(options_)),
        diagnostics_(diagnostics_config(args, options_, config_)) {
    if (config_.data_parallel) agreement_ = std::make_unique<StepAgreement>(config_.data_parallel);
  }

  void start() override {
    started_ = std::chrono::steady_clock::now();
    if (threads_ > 0) torch::set_num_threads(threads_);
    log::info("[", node_id(), "] ", torch::get_num_threads(), " compute thread(s), device ", config_.device, ", ",
              strategy_name(config_.strategy), ", ", optimizer_name(config_.optimizer), " lr ", config_.lr);
    if (!resume_from_.empty()) {
      prepare_resume();
      return;
    }
    if (!pretrained_.empty()) config_.pretrained = resolve_pretrained(pretrained_, pretrained_sha256_);
    if (config_.model.num_classes > 0) build({});
  }

  void process(Message in, Emitter& out) override {
    queue_.push_back(std::move(in));
    pump(out);
  }

  void epoch_end(int, std::uint64_t epoch, Emitter& out) override {
    Message marker;
    marker.signal = Signal::EpochEnd;
    marker.epoch = epoch;
    queue_.push_back(std::move(marker));
    pump(out);
  }

  // The end of the training stream is queued like its epoch ends, so that training is
  // over only once every queued batch has been trained on.
  void input_ended(int, Emitter& out) override {
    Message marker;
    marker.signal = Signal::End;
    queue_.push_back(std::move(marker));
    pump(out);
  }

  // A lent model is out: the runtime holds finish() back until it is released.
  bool waiting() const override { return lent_ && !lent_->released(); }
  void woken(Emitter& out) override { pump(out); }

  void finish(Emitter& out) override {
    pump(out);
    log::clear_status();
    if (trainer_) report_suspects(out);
    if (trainer_) emit_state(out, "final");
    if (!trainer_) throw std::runtime_error("no training batch arrived");
    const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count() / 60;
    if (tested_) {
      const ClassificationMetrics& t = *tested_->metrics;
      log::info("[", node_id(), "] result: test accuracy ", t.accuracy(), " and loss ", t.loss(), " on ", t.count(),
                " test samples after ", trainer_->step(), " optimizer steps, ", minutes, " min",
                last_eval_ ? " (last validation accuracy " + std::to_string(last_eval_->metrics->accuracy()) + ")"
                           : std::string());
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
      const ClassificationMetrics& e = *last_eval_->metrics;
      log::info("[", node_id(), "] result: accuracy ", e.accuracy(), " and loss ", e.loss(), " on ", e.count(),
                " eval samples after ", evaluations_, " evaluation(s), ", trainer_->step(), " optimizer steps, ", minutes,
                " min", last_eval_->ema_metrics ? " (EMA accuracy " + std::to_string(last_eval_->ema_metrics->accuracy()) + ")"
                                                : std::string());
    } else {
      log::info("[", node_id(), "] done: ", trainer_->step(), " optimizer steps, ", minutes, " min (no evaluation)");
    }
    if (!export_.empty()) {
      export_vit_huggingface(trainer_->model(), export_, class_names_,
                             {pipeline_json_, static_cast<std::uint64_t>(trainer_->step()), false});
      log::info("[", node_id(), "] exported the model with Hugging Face names to ", export_);
    }
  }

  // Interrupted, or another stage failed: hand the last consistent state to the
  // checkpoint stage (not when this stage's own step threw half-way).
  void drain(StopReason reason, Emitter& out) override {
    log::clear_status();
    if (!trainer_ || in_step_) return;
    try {
      settle(0);
    } catch (const std::exception& e) {  // the steps since the last read diverged: keep the saved state
      log::warn("[", node_id(), "] run ", stop_reason_name(reason), ": no state handed on (", first_line(e.what()), ")");
      return;
    }
    emit_state(out, "stop", /*collective=*/false);  // the other ranks may be gone
    log::info("[", node_id(), "] run ", stop_reason_name(reason), ": state at step ", trainer_->step(), " handed on for saving");
  }

  void stop(StopReason reason) override {
    if (reason != StopReason::Finished && trainer_ && !export_.empty())
      log::warn("[", node_id(), "] run ", stop_reason_name(reason), " at step ", trainer_->step(), ": nothing exported");
  }

 private:
  // Trains on the queued events in order, pausing while the model is lent (see the top).
  void pump(Emitter& out) {
    for (;;) {
      if (lent_) {
        if (!lent_->released()) return;
        take_answers(out);
        continue;
      }
      if (relend_) {  // resumed from a checkpoint taken while an evaluation was due
        const Lent due = *relend_;
        relend_.reset();
        lend(out, due);
        continue;
      }
      if (queue_.empty()) return;
      Message m = std::move(queue_.front());
      queue_.pop_front();
      if (m.signal == Signal::End) {
        end_training(out);
      } else if (ended_) {
        continue;  // early stopping: what is still in flight is not used; its slots go back
      } else if (m.is_data()) {
        if (agreement_ && !agreement_->go_on()) {
          end_with_the_other_ranks(out);
          continue;
        }
        train_batch(m, out);
      } else {
        end_train_epoch(m.epoch, out);
      }
    }
  }

  // All training batches are in: the final model goes to the test split, if any
  // (not when a stop was asked: of this process, or of any rank of a data-parallel job).
  void end_training(Emitter& out) {
    training_done_ = true;
    if (agreement_) agreement_->leave();
    const bool asked_to_stop = agreement_ && agreement_->why() == StepAgreement::Why::AskedToStop;
    if (trainer_ && final_model_connected_ && !asked_to_stop) lend(out, {true, next_epoch_, true, 0.0});
  }

  // Data-parallel: some rank takes no more steps (asked to stop, or out of data), so
  // none may: every rank ends its training here, after the same step.
  void end_with_the_other_ranks(Emitter& out) {
    const std::string why = "data-parallel: " + agreement_->explanation();
    log::info("[", node_id(), "] ", why, ": every rank stops after step ", trainer_ ? trainer_->step() : 0);
    ended_ = true;
    if (agreement_->why() == StepAgreement::Why::AskedToStop && trainer_) emit_state(out, "stop");
    if (control_) control_->end_run(node_id(), why, train_sources_);
  }

  void build(const Batch* first) {
    if (first && first->dataset) class_names_ = first->dataset->classes;
    if (config_.model.num_classes == 0) {
      if (class_names_.empty())
        throw std::runtime_error("num_classes is 0 (from the data) but the batches do not say how many classes there are; set num_classes");
      config_.model.num_classes = static_cast<int>(class_names_.size());
    }
    log::info("[", node_id(), "] model: ", config_.model.describe(), ", ",
              resume_ ? std::string("weights from the checkpoint")
                      : std::string(vit_init_name(config_.init)) + " init" + (config_.pretrained.empty() ? "" : " + pretrained weights"));
    trainer_ = std::make_unique<Trainer>(config_);
    if (resume_) apply_resume();
    log::info("[", node_id(), "] ", trainer_->trainable_parameters(), " trainable parameters in ", trainer_->groups().size(),
              " optimizer groups");
  }

  void train_batch(const Message& m, Emitter& out) {
    const auto& batch = m.as<Batch>();
    batch.wait_ready();
    if (!trainer_) build(&batch);
    if (batch.targets.defined() && !told_soft_targets_) {
      told_soft_targets_ = true;
      log::info("[", node_id(), "] batches carry soft targets (Mixup/CutMix): the loss uses them as they are",
                config_.label_smoothing > 0 ? "; label_smoothing here applies to batches without them only" : "",
                "; train accuracy counts the target's largest class");
    }
    if (class_names_.empty() && batch.dataset) class_names_ = batch.dataset->classes;
    if (!schedule_set_) set_schedule(batch);
    // The label check watches every epoch but the first (a random model's guesses say nothing).
    const bool watch_labels = evaluations_connected_ && label_check_.enabled() && train_epochs_ > 0 &&
                              !batch.targets.defined() && (batch.epoch > 0 || train_epochs_ == 1);
    in_step_ = true;
    std::vector<Trainer::Outcome> ignored;  // deferred reads leave the step's outcomes in its readout
    const StepStats s = guarded([&] {
      return trainer_->train_batch(batch.images, batch.labels, batch.targets, static_cast<std::int64_t>(batch.epoch),
                                   watch_labels ? &ignored : nullptr);
    });
    in_step_ = false;
    pending_.push_back({s, m.payload, watch_labels, batch.epoch + 1 == train_epochs_});
    settle(kReadLag);
    changed_since_state_ = true;
    if (batch.dataset) positions_[batch.dataset->source] = {batch.epoch, batch.next_position};
    next_epoch_ = batch.epoch;
    progress_.show({batch.epoch, train_epochs_, trainer_->step(), trainer_->total_steps(), window_.loss(),
                    window_.accuracy(), trainer_->base_lr_now(), window_.images_per_s()});
    if (s.stepped && trainer_->step() % log_every_ == 0) report_window(batch.epoch, out);
    // A step evaluation starts before the step's snapshot, which thus records it as due.
    if (s.stepped && model_connected_ && eval_every_steps_ > 0 && trainer_->step() % eval_every_steps_ == 0 &&
        !(eval_at_epoch_end_ && batch.steps_per_epoch > 0 && (batch.step + 1) % batch.steps_per_epoch == 0))
      lend(out, {false, batch.epoch, false, train_loss_so_far(false)});
    if (s.stepped && save_every_steps_ > 0 && trainer_->step() % save_every_steps_ == 0) emit_state(out, "step");
  }

  // The steps' numbers reach the host behind the device (Trainer's defer_reads): each
  // step's are read kReadLag steps later, when the device has long finished it, so the
  // host never waits for the step it just queued. Everything that reports or saves
  // them settles all of them first. A divergence found here fails the run as one found
  // in the step would, and leaves no state to save (the weights may already be NaN).
  void settle(std::size_t keep) {
    if (pending_.size() <= keep) return;
    in_step_ = true;
    guarded([&] {
      while (pending_.size() > keep) {
        PendingStep& p = pending_.front();
        outcomes_.clear();
        trainer_->read_stats(p.stats, p.watched ? &outcomes_ : nullptr);
        // Data-parallel: the last epoch decides on every rank's counts (summed once, here,
        // at the same step on every rank: the readouts settle in step order).
        if (p.watched && p.last_epoch && config_.data_parallel && !label_check_.history_pooled())
          label_check_.pool_history(*config_.data_parallel);
        if (p.watched) label_check_.observe(static_cast<const Batch&>(*p.batch), outcomes_, p.last_epoch);
        window_.add(p.stats);
        epoch_.add(p.stats);
        pending_.pop_front();
      }
      return 0;
    });
    in_step_ = false;
  }

  // `step` (the train step, or reading its numbers), with the diagnosis and its
  // remedies when it fails the usual ways.
  template <typename F>
  auto guarded(F step) -> decltype(step()) {
    try {
      return step();
    } catch (const DivergedError& e) {
      throw std::runtime_error(diagnostics_.diverged(e.what()).text());
    } catch (const c10::OutOfMemoryError& e) {
      throw std::runtime_error(diagnostics_.out_of_memory(first_line(e.what())).text());
    } catch (const std::bad_alloc&) {
      throw std::runtime_error(diagnostics_.out_of_memory("std::bad_alloc").text());
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      if (what.find("can't allocate memory") != std::string::npos || what.find("out of memory") != std::string::npos)
        throw std::runtime_error(diagnostics_.out_of_memory(first_line(what)).text());
      explain_communication_error(e, what);
      throw;
    } catch (const std::exception& e) {
      explain_communication_error(e, e.what());
      throw;
    }
  }

  // The gradients' all-reduce runs inside the backward pass (c10d's Reducer), so its
  // failures surface from the step: c10d's own error type, or Gloo's transport errors.
  // Such a failure is rethrown saying which ranks still answer; others return.
  void explain_communication_error(const std::exception& e, const std::string& what) {
    if (!config_.data_parallel) return;
    const bool communication = dynamic_cast<const c10::DistError*>(&e) != nullptr ||
                               what.find("gloo") != std::string::npos || what.find("NCCL") != std::string::npos;
    if (communication)
      throw std::runtime_error(config_.data_parallel->explain_failure(
          "gradient all-reduce failed: " + first_line(what), std::chrono::seconds(3)));
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

  void set_schedule(const Batch& batch) {
    std::int64_t total = total_steps_;
    if (total == 0) {
      if (batch.steps_per_epoch == 0 || !batch.dataset)
        throw std::runtime_error("total_steps is 0 (from the data) but the batches do not say how long an epoch is; set total_steps");
      const auto micro = static_cast<std::int64_t>(batch.steps_per_epoch * batch.dataset->epochs);
      total = (micro + config_.accumulation - 1) / config_.accumulation;
      train_epochs_ = batch.dataset->epochs;
    }
    if (resume_ && resume_->counter("trainer/total_steps") != total) {
      log::warn("[", node_id(), "] the schedule now has ", total, " optimizer steps, the checkpoint's had ",
                resume_->counter("trainer/total_steps"), ": the data or batch size changed, the run will not match");
    }
    trainer_->set_total_steps(total);
    const std::int64_t warmup = warmup_of(total);
    diagnostics_.set_run(total, warmup, batch.images.size(0), trainer_->model()->config.num_classes);
    schedule_set_ = true;
    log::info("[", node_id(), "] ", total, " optimizer steps (batch ", batch.images.size(0), " x accumulation ",
              config_.accumulation, "), warmup ", warmup);
    if (config_.data_parallel) {
      const auto ranks = config_.data_parallel->size();
      log::info("[", node_id(), "] data-parallel: global batch ", batch.images.size(0) * config_.accumulation * ranks,
                " = batch ", batch.images.size(0), " x accumulation ", config_.accumulation, " x ", ranks,
                " ranks; gradients averaged in ", config_.gradient_bucket_mb, " MB buckets");
    }
  }

  // The warmup of a schedule `total` optimizer steps long, as the trainer computes it.
  std::int64_t warmup_of(std::int64_t total) const {
    return LrSchedule::make(config_.schedule, total, config_.warmup_steps, config_.warmup_fraction, config_.min_lr_ratio)
        .warmup_steps;
  }

  // Data-parallel: a window over every rank's share (see TrainWindow::summed_over).
  TrainWindow all_ranks(const TrainWindow& w) const {
    return config_.data_parallel ? w.summed_over(*config_.data_parallel) : w;
  }

  void report_window(std::uint64_t epoch, Emitter& out) {
    settle(0);
    const TrainWindow window = all_ranks(window_);
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "train";
    metrics->epoch = epoch;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = {{"loss", window.loss()},
                       {"accuracy", window.accuracy()},
                       {"lr", trainer_->base_lr_now()},
                       {"grad_norm", window.grad_norm()},
                       {"images_per_s", window.images_per_s()},
                       {"total_steps", static_cast<double>(trainer_->total_steps())}};
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
    window_ = TrainWindow();
    if (auto finding = diagnostics_.on_train_window(trainer_->step(), metrics->values["loss"])) note(out, *finding);
  }

  void end_train_epoch(std::uint64_t epoch, Emitter& out) {
    if (!trainer_) return;
    settle(0);
    for (auto& [source, at] : positions_)
      if (is_train_source(source) && at.epoch == epoch) at = {epoch + 1, 0};
    next_epoch_ = epoch + 1;
    changed_since_state_ = true;
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "train_epoch";
    metrics->epoch = epoch;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    const TrainWindow all = all_ranks(epoch_);
    metrics->values = {{"loss", all.loss()}, {"accuracy", all.accuracy()}, {"seconds", epoch_.seconds()}};
    last_train_epoch_loss_ = metrics->values["loss"];
    log::info("[", node_id(), "] epoch ", epoch, " done: train loss ", metrics->values["loss"], ", accuracy ",
              metrics->values["accuracy"], ", ", epoch_.seconds(), " s");
    emit(out, metrics);
    epoch_ = TrainWindow();
    if (!model_connected_ || !eval_at_epoch_end_) {
      if (epoch_save_due(epoch)) emit_state(out, "epoch");
      return;
    }
    lend(out, {false, epoch, true, train_loss_so_far(true)});
  }

  // Hands the model to the evaluate nodes; training waits for them (see the top).
  void lend(Emitter& out, const Lent& info) {
    settle(0);
    const bool final = info.final;
    lent_ = std::make_shared<EvaluationAnswers>();
    RunControl* control = control_;
    auto snapshot = std::make_shared<ModelSnapshot>(lent_, [control, id = node_id()] {
      if (control) control->wake(id);
    });
    snapshot->model = trainer_->model();
    snapshot->ema = trainer_->ema_model();
    snapshot->input = trainer_->input();
    snapshot->precision = trainer_->config().precision;
    snapshot->classes = class_names_;
    snapshot->num_classes = trainer_->model()->config.num_classes;
    snapshot->final = final;
    snapshot->epoch = info.epoch;
    snapshot->step = static_cast<std::uint64_t>(trainer_->step());
    snapshot->after_epoch_end = info.after_epoch_end;
    snapshot->number = final ? 0 : evaluations_;
    if (!final) planned_evaluations(*snapshot);
    lent_info_ = info;
    out.emit(final ? kFinalModelPort : kModelPort, std::move(snapshot), info.epoch, lent_index_[final ? 1 : 0]++);
  }

  // The mean training loss of the epoch (so far), which an evaluation's loss is compared with.
  double train_loss_so_far(bool after_epoch_end) {
    settle(0);
    return after_epoch_end || epoch_.batches == 0 ? last_train_epoch_loss_ : epoch_.loss();
  }

  // How many evaluation points the run has, for the evaluate nodes' check of their
  // source's epochs (an upper bound: a step evaluation at an epoch's end is not made twice).
  void planned_evaluations(ModelSnapshot& s) const {
    if (train_epochs_ == 0) return;  // total_steps set: the epochs are not known
    s.planned = (eval_at_epoch_end_ ? train_epochs_ : 0) +
                (eval_every_steps_ > 0 ? static_cast<std::uint64_t>(trainer_->total_steps() / eval_every_steps_) : 0);
    s.planned_why = eval_every_steps_ > 0 ? "every " + std::to_string(eval_every_steps_) + " steps" +
                                                (eval_at_epoch_end_ ? " and after each epoch" : "")
                                          : "after each of " + std::to_string(train_epochs_) + " epochs";
  }

  bool is_train_source(const std::string& id) const {
    return std::find(train_sources_.begin(), train_sources_.end(), id) != train_sources_.end();
  }

  bool epoch_save_due(std::uint64_t epoch) const {
    return save_every_epochs_ > 0 && (epoch + 1) % static_cast<std::uint64_t>(save_every_epochs_) == 0;
  }

  void report_suspects(Emitter& out) {
    settle(0);
    if (!evaluations_connected_ || !label_check_.enabled()) return;
    auto final = last_evaluation_ ? std::make_shared<Evaluation>(*last_evaluation_) : std::make_shared<Evaluation>();
    final->classes = class_names_;
    if (config_.data_parallel) label_check_.pool_suspects(*config_.data_parallel);
    final->suspected_label_errors = label_check_.take_suspects();
    const auto& found = final->suspected_label_errors;
    auto name = [&](std::int64_t c) {
      return c >= 0 && static_cast<std::size_t>(c) < class_names_.size() ? class_names_[c] : std::to_string(c);
    };
    log::info("[", node_id(), "] label check: ", found.size(), " training sample(s) the model assigned to another class in ",
              "most epochs, with >= ", log::fixed(100 * label_check_.confidence(), 0), "% mean confidence (suspected label errors",
              found.empty() ? ")" : "; strongest first):");
    for (std::size_t i = 0; i < found.size() && i < 5; ++i)
      log::info("    ", found[i].key, ": labelled ", name(found[i].label), ", looks like ", name(found[i].predicted), " (",
                log::fixed(100 * found[i].confidence, 1), "%)");
    out.emit(kEvaluationsPort, std::move(final), next_epoch_, evaluation_index_++);
  }

  // The evaluate nodes released the model: their answers go into the run's record.
  void take_answers(Emitter& out) {
    std::vector<EvaluationAnswer> answers = lent_->take();
    const Lent info = lent_info_;
    lent_.reset();
    if (answers.size() > 1) {
      std::string nodes;
      for (const auto& a : answers) nodes += (nodes.empty() ? "" : ", ") + a.node;
      throw std::runtime_error("the " + std::string(info.final ? "final_model" : "model") + " output feeds " +
                               std::to_string(answers.size()) + " evaluate nodes (" + nodes +
                               "); connect one to each output (the run's records hold one evaluation per point)");
    }
    if (info.final) {
      if (!answers.empty()) end_test(answers.front(), out);
      return;
    }
    if (answers.empty()) {  // the evaluate node had no eval epoch left: nothing was evaluated
      if (info.after_epoch_end && epoch_save_due(info.epoch)) emit_state(out, "epoch");
      return;
    }
    end_evaluation(answers.front(), info, out);
  }

  void end_test(const EvaluationAnswer& answer, Emitter& out) {
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "test";
    metrics->epoch = next_epoch_;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = answer.headline;
    if (evaluations_connected_) out.emit(kEvaluationsPort, answer.evaluation, metrics->epoch, evaluation_index_++);
    emit(out, metrics);
    tested_ = answer.evaluation;
  }

  void end_evaluation(const EvaluationAnswer& answer, const Lent& info, Emitter& out) {
    ++evaluations_;
    changed_since_state_ = true;
    auto metrics = std::make_shared<Metrics>();
    metrics->scope = "eval";
    metrics->epoch = info.epoch;
    metrics->step = static_cast<std::uint64_t>(trainer_->step());
    metrics->values = answer.headline;
    metrics->values["train_loss"] = info.train_loss;
    last_eval_ = answer.evaluation;
    for (const std::string& source : answer.sources) positions_[source] = {evaluations_, 0};
    if (evaluations_connected_) {
      last_evaluation_ = answer.evaluation;
      out.emit(kEvaluationsPort, answer.evaluation, metrics->epoch, evaluation_index_++);
    }
    const bool stop_now = early_.update(metrics->values);
    emit(out, metrics);
    const ClassificationMetrics& evaluated = *answer.evaluation->metrics;
    if (auto finding = diagnostics_.on_evaluation(trainer_->step(), info.train_loss, evaluated.loss(), evaluated.accuracy()))
      note(out, *finding);
    if (early_.enabled()) {
      log::info("[", node_id(), "] early stopping: best eval ", early_.metric(), " ", early_.best(), ", ",
                early_.evaluations_without_improvement(), " evaluation(s) without improvement");
    }
    if (info.after_epoch_end && epoch_save_due(info.epoch)) emit_state(out, "epoch");
    if (stop_now) {
      const std::string why = early_.reason();
      log::info("[", node_id(), "] ", why, ": ending the run");
      ended_ = true;
      // The training sources end; an evaluate node ends its own once training is over,
      // and a test split still runs.
      if (control_) control_->end_run(node_id(), why, train_sources_);
    }
  }

  void emit(Emitter& out, std::shared_ptr<Metrics> metrics) {
    const std::uint64_t epoch = metrics->epoch;
    history_.push_back(*metrics);
    out.emit(kMetricsPort, std::move(metrics), epoch, metrics_index_++);
  }

  // A snapshot of everything needed to continue exactly here (see train_state.hpp).
  // `collective`: every rank of a data-parallel job emits this state at the same point,
  // so the log windows in it can be the job's (rank 0 keeps them on resume).
  void emit_state(Emitter& out, const char* reason, bool collective = true) {
    if (!state_connected_ || !trainer_ || !changed_since_state_) return;
    settle(0);
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
    auto& v = state->values;
    c["stage/evaluations"] = static_cast<std::int64_t>(evaluations_);
    const bool evaluating = lent_ && !lent_info_.final;  // an evaluation is due: resuming lends the model again
    c["stage/evaluating"] = evaluating ? 1 : 0;
    c["stage/eval_epoch"] = static_cast<std::int64_t>(evaluating ? lent_info_.epoch : 0);
    c["stage/eval_after_epoch_end"] = evaluating && lent_info_.after_epoch_end ? 1 : 0;
    v["stage/eval_train_loss"] = evaluating ? lent_info_.train_loss : 0.0;
    c["stage/metrics_index"] = static_cast<std::int64_t>(metrics_index_);
    c["stage/early_stopping_bad"] = early_.evaluations_without_improvement();
    c["stage/early_stopping_best_at"] = early_.best_evaluation();
    c["stage/early_stopping_seen"] = early_.seen();
    (collective ? all_ranks(epoch_) : epoch_).save(*state, "epoch");
    (collective ? all_ranks(window_) : window_).save(*state, "window");
    // Each rank's place in its share of the epoch is saved (rank 0's: every rank has
    // taken as many batches), so only a job of as many ranks can continue from it.
    c["stage/world_size"] = config_.data_parallel ? config_.data_parallel->size() : 1;
    v["stage/early_stopping_best"] = early_.best();
    state->positions = positions_;
    state->history = history_;
    // The job's counts (summed over ranks) where every rank saves at once; a rank's own otherwise.
    label_check_.save(*state, collective && config_.data_parallel ? config_.data_parallel.get() : nullptr);
    if (collective && config_.data_parallel) check_ranks_agree(*state);
    out.emit(kStatePort, std::move(state), next_epoch_, state_index_++);
  }

  // A checkpoint holds rank 0's source positions and generator states and stands for
  // every rank: they must be the same on all (each rank has taken as many batches of
  // its share; same seed, same draws). Checked at every save, so a resume never
  // silently continues a rank from another rank's state.
  void check_ranks_agree(const TrainState& state) {
    std::string mine;
    for (const auto& [source, at] : state.positions)
      mine += source + ":" + std::to_string(at.epoch) + ":" + std::to_string(at.position) + ";";
    for (const auto& [name, tensor] : state.tensors) {
      if (name.rfind("rng/", 0) != 0) continue;
      const at::Tensor bytes = tensor.contiguous();
      mine += name + ":" + std::to_string(std::hash<std::string_view>{}(std::string_view(
                               static_cast<const char*>(bytes.data_ptr()), bytes.nbytes()))) + ";";
    }
    const auto all = config_.data_parallel->all_gather_text("state/" + std::to_string(state_index_), mine);
    for (std::size_t r = 1; r < all.size(); ++r) {
      if (all[r] == all[0] || warned_state_mismatch_) continue;
      warned_state_mismatch_ = true;
      log::warn("[", node_id(), "] data-parallel: rank ", r, "'s source positions or generator state differ from rank 0's at step ",
                state.step, ": a resume from this checkpoint would not continue rank ", r,
                " exactly (rank 0: ", all[0], " rank ", r, ": ", all[r], ")");
    }
  }

  // start(): read the checkpoint and build the model it holds.
  void prepare_resume() {
    const auto entry = saved_states_.find(node_id());
    const TrainState* found = entry == saved_states_.end() ? nullptr : dynamic_cast<const TrainState*>(entry->second.get());
    if (!found) {
      std::string held;
      for (const auto& [id, state] : saved_states_) held += (held.empty() ? "'" : ", '") + id + "'";
      throw std::runtime_error(resume_from_ + " holds the state of node " + (held.empty() ? "none" : held) + ", not of '" +
                               node_id() + "' (resume with the pipeline it was saved from)");
    }
    resume_ = std::shared_ptr<const TrainState>(entry->second, found);
    const TrainState& st = *resume_;
    const std::int64_t saved_ranks = st.counter("stage/world_size", 1);
    const std::int64_t ranks = config_.data_parallel ? config_.data_parallel->size() : 1;
    if (saved_ranks != ranks)
      throw std::runtime_error(resume_from_ + " was saved by a job of " + std::to_string(saved_ranks) +
                               " rank(s); this one has " + std::to_string(ranks) +
                               ": resume with as many (each rank's place in its share of the epoch is saved, and the "
                               "shares change with the number of ranks). To go on with another number, export the "
                               "weights (flowrun export) and start a new run from them (pretrained)");
    class_names_ = st.classes;
    VitConfig saved = vit_config_from_json(st.model_config);
    if (config_.model.num_classes == 0) config_.model.num_classes = saved.num_classes;
    if (vit_config_to_json(config_.model) != st.model_config) {
      throw std::runtime_error("the pipeline's model (" + config_.model.describe() + ") is not the checkpoint's (" +
                               saved.describe() + "); resume with the settings it was saved with");
    }
    build(nullptr);  // weights come from the checkpoint, not from `pretrained`
  }

  void apply_resume() {
    const TrainState& st = *resume_;
    trainer_->load_state(st);
    evaluations_ = static_cast<std::uint64_t>(st.counter("stage/evaluations"));
    metrics_index_ = static_cast<std::uint64_t>(st.counter("stage/metrics_index"));
    epoch_.restore(st, "epoch");
    window_.restore(st, "window");  // the log window in progress (its images/s restarts)
    if (config_.data_parallel && config_.data_parallel->rank() != 0) {
      epoch_ = TrainWindow();  // the saved windows are the job's: rank 0 carries them on
      window_ = TrainWindow();
    }
    early_.restore(st.value("stage/early_stopping_best"), st.counter("stage/early_stopping_bad"),
                   st.counter("stage/early_stopping_best_at", -1), st.counter("stage/early_stopping_seen"));
    positions_ = st.positions;
    next_epoch_ = st.epoch;
    label_check_.load(st, !config_.data_parallel || config_.data_parallel->rank() == 0);
    // The diagnostics see the run so far again (before the first evaluation or batch of this process).
    const std::int64_t total = st.counter("trainer/total_steps");
    diagnostics_.set_run(total, warmup_of(total), 0, trainer_->model()->config.num_classes);
    diagnostics_.replay(st.history);
    history_ = st.history;
    if (st.counter("stage/evaluating")) {
      relend_ = Lent{false, static_cast<std::uint64_t>(st.counter("stage/eval_epoch")),
                     st.counter("stage/eval_after_epoch_end", 1) != 0, st.value("stage/eval_train_loss")};
    }
    changed_since_state_ = false;  // the state is the checkpoint's until the next batch
    log::info("[", node_id(), "] resumed from ", resume_from_, " (", st.reason, " checkpoint): step ", st.step,
              ", epoch ", st.epoch, ", ", evaluations_, " evaluation(s) done");
  }

  // Configuration
  TrainOptions options_;  // the node's parameters
  TrainConfig config_;
  std::string pretrained_, pretrained_sha256_;
  std::string pipeline_json_;  // the description as run, recorded in an export
  std::int64_t total_steps_;
  std::int64_t log_every_;
  std::string export_;
  int threads_;
  bool model_connected_, final_model_connected_;
  std::vector<std::string> train_sources_;  // ended by early stopping
  std::int64_t eval_every_steps_;
  bool eval_at_epoch_end_;
  bool state_connected_;
  bool evaluations_connected_;
  std::int64_t save_every_steps_, save_every_epochs_;
  std::string resume_from_;
  std::map<std::string, std::shared_ptr<const Payload>> saved_states_;  // resuming: by node id
  RunControl* control_;

  // Training
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<StepAgreement> agreement_;  // data-parallel: the ranks step together
  bool warned_state_mismatch_ = false;
  std::vector<std::string> class_names_;
  bool schedule_set_ = false;
  std::deque<Message> queue_;  // training events waiting while the model is lent (see the top)
  std::uint64_t train_epochs_ = 0;
  std::uint64_t next_epoch_ = 0;
  bool training_done_ = false;
  bool ended_ = false;    // early stopping ended the run
  bool in_step_ = false;  // a train step is running (or threw): the state is not consistent
  std::vector<Trainer::Outcome> outcomes_;  // of the current step, for the label check
  TrainWindow window_, epoch_;
  double last_train_epoch_loss_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  ProgressLine progress_;

  // Evaluation: the model lent to evaluate nodes, and what the stage knew when it lent it (Lent)
  std::shared_ptr<EvaluationAnswers> lent_;  // while lent; its answers once released
  Lent lent_info_;
  std::optional<Lent> relend_;  // resumed while an evaluation was due
  std::uint64_t lent_index_[2] = {0, 0};  // snapshots emitted on model, final_model
  std::uint64_t evaluations_ = 0;
  std::shared_ptr<const Evaluation> last_eval_, tested_;
  bool told_soft_targets_ = false;
  // Steps whose numbers are still on their way to the host, oldest first. `batch` is
  // kept until they are read: for the label check (its thumbnails) when the step was
  // watched, and because a batch that came from host memory may still be being copied
  // to the device (a non-blocking copy from the batch stage's pinned buffers, which it
  // refills once released); the step's numbers are read after that copy is done.
  struct PendingStep {
    StepStats stats;
    std::shared_ptr<const Payload> batch;
    bool watched = false;
    bool last_epoch = false;
  };
  static constexpr std::size_t kReadLag = 2;
  std::deque<PendingStep> pending_;
  std::shared_ptr<const Evaluation> last_evaluation_;
  std::uint64_t evaluation_index_ = 0;
  LabelCheck label_check_;
  EarlyStopping early_;
  Diagnostics diagnostics_;

  // Outputs, checkpoints and resuming
  std::uint64_t metrics_index_ = 0;
  std::uint64_t state_index_ = 0;
  std::vector<Metrics> history_;  // every metrics record emitted, in order
  bool changed_since_state_ = true;  // trained or evaluated since the last snapshot
  std::shared_ptr<const TrainState> resume_;  // this node's, when resuming
  std::map<std::string, StreamPosition> positions_;  // source -> where its stream continues
};

}  // namespace

std::unique_ptr<Stage> make_train_stage(const StageArgs& args) { return std::make_unique<TrainStage>(args); }

}  // namespace flowrun
