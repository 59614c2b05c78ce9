#include "stages/evaluate/evaluation_pass.hpp"

#include <stdexcept>
#include <string>

#include "lib/distributed/process_group.hpp"
#include "stages/messages/sample_records.hpp"

namespace flowrun {

EvaluationPass::EvaluationPass(const ModelSnapshot& model, std::size_t worst_top)
    : model_(model),
      metrics_(std::make_shared<ClassificationMetrics>(model.num_classes)),
      ema_metrics_(model.ema ? std::make_shared<ClassificationMetrics>(model.num_classes) : nullptr),
      worst_(worst_top),
      worst_top_(worst_top),
      keep_worst_(worst_top > 0) {}

void EvaluationPass::add(const Batch& batch) {
  if (batch.targets.defined())
    throw std::runtime_error("evaluation batch " + std::to_string(batch.step) +
                             " carries soft targets: a mixup/cutmix stage is on an evaluation chain; evaluation "
                             "scores the labels of unmixed images, so move the mix stage to the training chain");
  batch.wait_ready();
  outcomes_.clear();
  evaluate_batch(model_.model, model_.input, model_.precision, batch.images, batch.labels, *metrics_,
                 keep_worst_ ? &outcomes_ : nullptr);
  if (ema_metrics_) evaluate_batch(model_.ema, model_.input, model_.precision, batch.images, batch.labels, *ema_metrics_);
  if (!keep_worst_) return;
  const torch::Tensor labels = batch.host_side_labels().to(torch::kCPU, torch::kLong).contiguous();
  const auto* label = labels.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < outcomes_.size(); ++i) {
    const SampleOutcome& o = outcomes_[i];
    if (o.predicted == label[i] || !worst_.wants(o.loss)) continue;
    worst_.add(sample_record(batch, i, label[i], o.predicted, o.confidence, o.loss));
  }
}

void EvaluationPass::add_up_ranks(DataParallelGroup& group, const std::string& key) {
  if (keep_worst_) {
    const std::vector<std::string> lists = group.all_gather_text("worst/" + key, worst_.pack());
    WorstSamples pooled(worst_top_);
    for (const std::string& list : lists) pooled.add_packed(list);
    worst_ = std::move(pooled);
  }
  std::vector<double> sums = metrics_->sums();
  if (ema_metrics_) {
    const std::vector<double> ema = ema_metrics_->sums();
    sums.insert(sums.end(), ema.begin(), ema.end());
  }
  group.all_reduce_sum(sums);
  const std::size_t own = sums.size() / (ema_metrics_ ? 2 : 1);
  metrics_->set_sums({sums.begin(), sums.begin() + static_cast<std::ptrdiff_t>(own)});
  if (ema_metrics_) ema_metrics_->set_sums({sums.begin() + static_cast<std::ptrdiff_t>(own), sums.end()});
}

double EvaluationPass::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

std::map<std::string, double> EvaluationPass::headline() const {
  const ClassificationMetrics& m = *metrics_;
  std::map<std::string, double> values = {{"loss", m.loss()},
                                          {"accuracy", m.accuracy()},
                                          {"top5_accuracy", m.top_k_accuracy()},
                                          {"macro_f1", m.macro_f1()},
                                          {"samples", static_cast<double>(m.count())}};
  if (ema_metrics_) {
    values["ema_loss"] = ema_metrics_->loss();
    values["ema_accuracy"] = ema_metrics_->accuracy();
  }
  return values;
}

std::shared_ptr<Evaluation> EvaluationPass::take_evaluation(const std::string& split) {
  auto e = std::make_shared<Evaluation>();
  e->split = split;
  e->epoch = model_.epoch;
  e->step = model_.step;
  e->classes = model_.classes;
  e->metrics = metrics_;  // finished: shared, not copied
  e->ema_metrics = ema_metrics_;
  e->worst = worst_.take();
  return e;
}

}  // namespace flowrun
