#include "stages/train/label_check.hpp"

#include "stages/messages/sample_records.hpp"

namespace flowrun {

void LabelCheck::observe(const Batch& batch, const std::vector<Trainer::Outcome>& outcomes, bool last_epoch) {
  const torch::Tensor labels = batch.labels.to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor indices = batch.indices.to(torch::kCPU, torch::kLong).contiguous();
  const auto* label = labels.data_ptr<std::int64_t>();
  const auto* index = indices.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Trainer::Outcome& o = outcomes[i];
    Watch& w = watch_[index[i]];
    ++w.seen;
    if (o.predicted != label[i]) {
      ++w.wrong;
      w.confidence_sum += o.confidence;
      w.predicted = o.predicted;
    }
    if (!last_epoch || 2 * w.wrong <= w.seen) continue;  // right at least half the time
    const double confidence = w.confidence_sum / w.wrong;
    const double score = static_cast<double>(w.wrong) / w.seen + confidence;
    if (confidence < confidence_ || !suspects_.wants(score)) continue;
    suspects_.add(sample_record(batch, i, label[i], w.predicted, confidence, score));
  }
}

void LabelCheck::save(TrainState& state) const {
  if (watch_.empty()) return;
  const auto n = static_cast<std::int64_t>(watch_.size());
  torch::Tensor index = torch::empty({n}, torch::kLong), predicted = torch::empty({n}, torch::kLong);
  torch::Tensor counts = torch::empty({n, 2}, torch::kLong), confidence = torch::empty({n}, torch::kDouble);
  auto* i_out = index.data_ptr<std::int64_t>();
  auto* p_out = predicted.data_ptr<std::int64_t>();
  auto* c_out = counts.data_ptr<std::int64_t>();
  auto* f_out = confidence.data_ptr<double>();
  std::int64_t k = 0;
  for (const auto& [i, w] : watch_) {
    i_out[k] = i;
    p_out[k] = w.predicted;
    c_out[2 * k] = w.seen;
    c_out[2 * k + 1] = w.wrong;
    f_out[k] = w.confidence_sum;
    ++k;
  }
  state.tensors.emplace_back("label_check/index", index);
  state.tensors.emplace_back("label_check/predicted", predicted);
  state.tensors.emplace_back("label_check/seen_wrong", counts);
  state.tensors.emplace_back("label_check/confidence_sum", confidence);
}

void LabelCheck::load(const TrainState& state) {
  const at::Tensor* index = state.find("label_check/index");
  if (!index) return;
  const auto i = index->contiguous(), p = state.find("label_check/predicted")->contiguous();
  const auto c = state.find("label_check/seen_wrong")->contiguous();
  const auto f = state.find("label_check/confidence_sum")->contiguous();
  for (std::int64_t k = 0; k < i.size(0); ++k) {
    Watch& w = watch_[i.data_ptr<std::int64_t>()[k]];
    w.predicted = p.data_ptr<std::int64_t>()[k];
    w.seen = static_cast<std::int32_t>(c.data_ptr<std::int64_t>()[2 * k]);
    w.wrong = static_cast<std::int32_t>(c.data_ptr<std::int64_t>()[2 * k + 1]);
    w.confidence_sum = f.data_ptr<double>()[k];
  }
}

}  // namespace flowrun
