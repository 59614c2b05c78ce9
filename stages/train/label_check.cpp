#include "stages/train/label_check.hpp"

#include <algorithm>

#include "lib/distributed/process_group.hpp"
#include "stages/messages/sample_records.hpp"

namespace flowrun {

void LabelCheck::observe(const Batch& batch, const std::vector<Trainer::Outcome>& outcomes, bool last_epoch) {
  // The host's copies (to_device keeps them): reading labels off the device would wait
  // for the step just queued, a host sync every step.
  const torch::Tensor labels = batch.host_side_labels().to(torch::kCPU, torch::kLong).contiguous();
  const torch::Tensor indices = batch.indices.to(torch::kCPU, torch::kLong).contiguous();
  const auto* label = labels.data_ptr<std::int64_t>();
  const auto* index = indices.data_ptr<std::int64_t>();
  auto sight = [&](Watch& w, const Trainer::Outcome& o, std::int64_t truth) {
    ++w.seen;
    if (o.predicted != truth) {
      ++w.wrong;
      w.confidence_sum += o.confidence;
      w.predicted = o.predicted;
    }
  };
  for (std::size_t i = 0; i < outcomes.size(); ++i) {
    const Trainer::Outcome& o = outcomes[i];
    Watch& mine = watch_[index[i]];
    sight(mine, o, label[i]);
    if (!last_epoch) continue;
    // The sample's whole history: this rank's counts alone, or (data-parallel) every
    // rank's before this epoch plus this sighting (a sample passes once per epoch).
    Watch w = mine;
    if (pooled_ready_) {
      const auto at = static_cast<std::size_t>(index[i]);
      w = at < pooled_.size() ? pooled_[at] : Watch{};
      sight(w, o, label[i]);
    }
    if (2 * w.wrong <= w.seen) continue;  // right at least half the time
    const double confidence = w.confidence_sum / w.wrong;
    const double score = static_cast<double>(w.wrong) / w.seen + confidence;
    if (confidence < confidence_ || !suspects_.wants(score)) continue;
    suspects_.add(sample_record(batch, i, label[i], w.predicted, confidence, score));
  }
}

std::vector<LabelCheck::Watch> LabelCheck::summed(DataParallelGroup& group) const {
  std::int64_t largest = -1;
  for (const auto& [i, w] : watch_) largest = std::max(largest, i);
  torch::Tensor size = torch::tensor({largest + 1});
  group.all_reduce_max(size);
  const auto n = size.item<std::int64_t>();
  // seen, wrong, confidence sum added up; the other class: any rank's (the largest).
  torch::Tensor sums = torch::zeros({3, n}, torch::kDouble), predicted = torch::full({n}, -1, torch::kLong);
  auto* s = sums.data_ptr<double>();
  auto* p = predicted.data_ptr<std::int64_t>();
  for (const auto& [i, w] : watch_) {
    s[i] = w.seen;
    s[n + i] = w.wrong;
    s[2 * n + i] = w.confidence_sum;
    p[i] = w.predicted;
  }
  group.all_reduce_sum(sums);
  group.all_reduce_max(predicted);
  std::vector<Watch> all(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    all[i].seen = static_cast<std::int32_t>(s[i]);
    all[i].wrong = static_cast<std::int32_t>(s[n + i]);
    all[i].confidence_sum = s[2 * n + i];
    all[i].predicted = p[i];
  }
  return all;
}

void LabelCheck::pool_history(DataParallelGroup& group) {
  pooled_ = summed(group);
  pooled_ready_ = true;
}

void LabelCheck::pool_suspects(DataParallelGroup& group) {
  const std::vector<std::string> lists = group.all_gather_text("label_suspects", suspects_.pack());
  WorstSamples all(top_);
  for (const std::string& list : lists) all.add_packed(list);
  suspects_ = std::move(all);
}

void LabelCheck::save(TrainState& state, DataParallelGroup* group) const {
  std::unordered_map<std::int64_t, Watch> job;
  if (group) {
    const std::vector<Watch> all = summed(*group);
    for (std::size_t i = 0; i < all.size(); ++i)
      if (all[i].seen > 0) job[static_cast<std::int64_t>(i)] = all[i];
  }
  const auto& watch = group ? job : watch_;
  if (watch.empty()) return;
  const auto n = static_cast<std::int64_t>(watch.size());
  torch::Tensor index = torch::empty({n}, torch::kLong), predicted = torch::empty({n}, torch::kLong);
  torch::Tensor counts = torch::empty({n, 2}, torch::kLong), confidence = torch::empty({n}, torch::kDouble);
  auto* i_out = index.data_ptr<std::int64_t>();
  auto* p_out = predicted.data_ptr<std::int64_t>();
  auto* c_out = counts.data_ptr<std::int64_t>();
  auto* f_out = confidence.data_ptr<double>();
  std::int64_t k = 0;
  for (const auto& [i, w] : watch) {
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

void LabelCheck::load(const TrainState& state, bool keep_counts) {
  const at::Tensor* index = state.find("label_check/index");
  if (!index || !keep_counts) return;
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
