// evaluate: scores the model the train stage lends it (a ModelSnapshot on the model
// input) on one epoch of its batch input per snapshot.
//
// Both inputs arrive interleaved in this one serial stage. Batches of an epoch whose
// snapshot has not come yet wait in a queue (holding their prefetch slots, so the
// eval loader keeps at most `prefetch` items ready); snapshots wait for their epoch.
// Which batches score which model is therefore fixed by the data, not by thread
// timing. Dropping a snapshot once answered releases it: the train stage resumes.
#include <torch/torch.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "flowrun/logging.hpp"
#include "lib/distributed/process_group.hpp"
#include "stages/evaluate/evaluate_plugins.hpp"
#include "stages/evaluate/evaluation_pass.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/messages/model_snapshot.hpp"

namespace flowrun {
namespace {

std::vector<std::string> sources_of(const std::vector<UpstreamNode>& upstream) {
  std::vector<std::string> ids;
  for (const UpstreamNode& u : upstream)
    if (u.source) ids.push_back(u.id);
  return ids;
}

class EvaluateStage : public OrderedStage {
 public:
  explicit EvaluateStage(const StageArgs& args)
      : OrderedStage(args),
        options_(read_options<EvaluateOptions>(args.params)),
        split_(options_.split),
        misclassified_top_(static_cast<std::size_t>(options_.misclassified_top)),
        metrics_connected_(args.outputs_connected.size() > kEvaluateMetricsPort && args.outputs_connected[kEvaluateMetricsPort]),
        evaluations_connected_(args.outputs_connected.size() > kEvaluateEvaluationsPort &&
                               args.outputs_connected[kEvaluateEvaluationsPort]),
        batch_sources_(args.input_upstream.size() > kEvaluateBatchPort ? sources_of(args.input_upstream[kEvaluateBatchPort])
                                                                       : std::vector<std::string>{}),
        control_(args.control) {}

  void process(Message in, Emitter& out) override {
    (in.port == kEvaluateModelPort ? models_ : batches_).push_back(std::move(in));
    pump(out);
  }

  void epoch_end(int port, std::uint64_t epoch, Emitter& out) override {
    if (port != kEvaluateBatchPort) return;
    Message marker;
    marker.signal = Signal::EpochEnd;
    marker.epoch = epoch;
    batches_.push_back(std::move(marker));
    pump(out);
  }

  void input_ended(int port, Emitter& out) override {
    if (port == kEvaluateBatchPort) {
      batches_ended_ = true;
    } else {
      models_ended_ = true;
    }
    pump(out);
  }

  void finish(Emitter& out) override {
    pump(out);
    if (!last_) return;
    log::info("[", node_id(), "] ", last_->split, " split, per class (", last_point_, "):");
    for (const auto& line : last_->metrics->table(last_->classes)) log::info("    ", line);
  }

 private:
  // Serves the snapshots in order, each with the next epoch of batches.
  void pump(Emitter& out) {
    for (;;) {
      if (!current_.payload) {
        if (models_.empty()) {
          if (models_ended_) end_spare_epochs();
          return;
        }
        current_ = std::move(models_.front());
        models_.pop_front();
        const auto& model = current_.as<ModelSnapshot>();
        pass_ = std::make_unique<EvaluationPass>(model, misclassified_top_);
        if (model.final) log::info("[", node_id(), "] evaluating the ", split_name(model), " split with the final model");
      }
      if (batches_.empty()) {
        if (!batches_ended_) return;
        give_up();
        continue;
      }
      Message m = std::move(batches_.front());
      batches_.pop_front();
      if (m.is_data()) {
        const auto& batch = m.as<Batch>();
        if (batch.dataset && !checked_epochs_) {
          map_classes(*batch.dataset);
          check_epochs(*batch.dataset);
        }
        add_to_pass(batch);
      } else {
        complete(out);
      }
    }
  }

  // Training is over: the eval source's epochs still to come are not needed. What is
  // queued goes, so that its prefetch slots return and the source can end.
  void end_spare_epochs() {
    batches_.clear();
    if (control_ && !ended_sources_) control_->end_sources(batch_sources_);
    ended_sources_ = true;
  }

  std::string split_name(const ModelSnapshot& model) const {
    return !split_.empty() ? split_ : model.final ? "test" : "val";
  }

  // The eval source has no epoch left for this snapshot: it goes back unanswered.
  void give_up() {
    const auto& model = current_.as<ModelSnapshot>();
    if (!warned_short_) {
      warned_short_ = true;
      log::warn("[", node_id(), "] the batch input ended before the evaluation ", model.point(),
                ": it and any later ones are not made (give the eval source one epoch per evaluation)");
    }
    pass_.reset();
    current_ = Message();
  }

  // Labels number the eval source's classes (sorted names); the model numbers its own,
  // which a saved model from elsewhere may order otherwise or have more of (a Hugging
  // Face model's id2label). Labels are mapped by class name; a class the model does not
  // know fails the run, naming it.
  void map_classes(const DatasetInfo& info) {
    const auto& model = current_.as<ModelSnapshot>();
    if (info.classes.empty() || model.classes.empty() || info.classes == model.classes) return;
    std::vector<std::int64_t> to_model(info.classes.size());
    std::string unknown;
    for (std::size_t i = 0; i < info.classes.size(); ++i) {
      const auto it = std::find(model.classes.begin(), model.classes.end(), info.classes[i]);
      if (it == model.classes.end()) unknown += (unknown.empty() ? "" : ", ") + info.classes[i];
      to_model[i] = it - model.classes.begin();
    }
    if (!unknown.empty())
      throw std::runtime_error("eval source '" + info.source + "' has classes the model was not trained on: " + unknown +
                               " (keep the model's classes with the source's classes parameter)");
    relabel_ = torch::tensor(to_model, torch::kLong);
  }

  // Scores a batch, its labels first put in the model's numbering when they differ.
  void add_to_pass(const Batch& batch) {
    if (!relabel_.defined()) return pass_->add(batch);
    if (relabel_.device() != batch.labels.device()) relabel_ = relabel_.to(batch.labels.device());  // once
    Batch relabelled = batch;
    relabelled.labels = relabel_.index_select(0, batch.labels);
    pass_->add(relabelled);
  }

  void check_epochs(const DatasetInfo& info) {
    checked_epochs_ = true;
    const auto& model = current_.as<ModelSnapshot>();
    if (model.final || model.planned == 0 || info.epochs >= model.planned) return;
    throw std::runtime_error("eval source '" + info.source + "' runs " + std::to_string(info.epochs) +
                             " epoch(s) but this run evaluates up to " + std::to_string(model.planned) + " times (" +
                             model.planned_why + "): set its epochs to " + std::to_string(model.planned) +
                             " or more (the spare ones are not read)");
  }

  void complete(Emitter& out) {
    const auto& model = current_.as<ModelSnapshot>();
    const std::string split = split_name(model);
    if (const auto group = current_data_parallel_group())
      pass_->add_up_ranks(*group, node_id() + "/" + std::to_string(passes_done_));
    ++passes_done_;
    const ClassificationMetrics& m = pass_->metrics();
    log::info("[", node_id(), "] ", model.final ? split : "eval " + model.point(), ": loss ", m.loss(), ", accuracy ",
              m.accuracy(), ", top-5 ", m.top_k_accuracy(), ", macro F1 ", m.macro_f1(), " (", m.count(), " samples, ",
              pass_->seconds(), " s)",
              pass_->ema_metrics() ? ", EMA accuracy " + std::to_string(pass_->ema_metrics()->accuracy()) : std::string());
    EvaluationAnswer answer;
    answer.node = node_id();
    answer.sources = batch_sources_;
    answer.headline = pass_->headline();
    answer.evaluation = pass_->take_evaluation(split);
    if (metrics_connected_) {
      auto metrics = std::make_shared<Metrics>();
      metrics->scope = model.final ? "test" : "eval";
      metrics->epoch = model.epoch;
      metrics->step = model.step;
      metrics->values = answer.headline;
      out.emit(kEvaluateMetricsPort, std::move(metrics), model.epoch, emitted_++);
    }
    if (evaluations_connected_)
      out.emit(kEvaluateEvaluationsPort, answer.evaluation, model.epoch, emitted_evaluations_++);
    last_ = answer.evaluation;
    last_point_ = model.point();
    model.answer(std::move(answer));
    pass_.reset();
    current_ = Message();  // the release: the train stage goes on
  }

  // Configuration
  EvaluateOptions options_;
  std::string split_;
  std::size_t misclassified_top_;
  bool metrics_connected_, evaluations_connected_;
  std::uint64_t passes_done_ = 0;  // names each pass alike on every data-parallel rank
  std::vector<std::string> batch_sources_;
  RunControl* control_;

  std::deque<Message> models_, batches_;  // waiting, by input (see the top)
  bool models_ended_ = false, batches_ended_ = false;
  Message current_;  // the snapshot being evaluated
  std::unique_ptr<EvaluationPass> pass_;
  torch::Tensor relabel_;  // eval source label -> model label; undefined when they agree
  bool checked_epochs_ = false, warned_short_ = false, ended_sources_ = false;
  std::shared_ptr<const Evaluation> last_;
  std::string last_point_;
  std::uint64_t emitted_ = 0, emitted_evaluations_ = 0;
};

}  // namespace

std::unique_ptr<Stage> make_evaluate_stage(const StageArgs& args) { return std::make_unique<EvaluateStage>(args); }

}  // namespace flowrun
