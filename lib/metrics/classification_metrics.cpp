#include "lib/metrics/classification_metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace flowrun {

ClassificationMetrics::ClassificationMetrics(int classes, int top_k)
    : classes_(classes), top_k_(std::min(top_k, classes)),
      confusion_(static_cast<std::size_t>(classes), std::vector<std::int64_t>(static_cast<std::size_t>(classes), 0)) {
  if (classes < 1) throw std::invalid_argument("metrics need at least one class");
}

void ClassificationMetrics::add(std::int64_t label, const std::int64_t* ranked, int ranked_count, double loss) {
  if (label < 0 || label >= classes_ || ranked_count < 1 || ranked[0] < 0 || ranked[0] >= classes_)
    throw std::out_of_range("label " + std::to_string(label) + " or prediction outside the " + std::to_string(classes_) +
                            " classes");
  ++count_;
  loss_sum_ += loss;
  ++confusion_[static_cast<std::size_t>(label)][static_cast<std::size_t>(ranked[0])];
  correct_ += ranked[0] == label;
  const int k = std::min(top_k_, ranked_count);
  top_k_correct_ += std::find(ranked, ranked + k, label) != ranked + k;
}

void ClassificationMetrics::merge(const ClassificationMetrics& other) {
  if (other.classes_ != classes_ || other.top_k_ != top_k_) throw std::invalid_argument("merging metrics of other shapes");
  count_ += other.count_;
  correct_ += other.correct_;
  top_k_correct_ += other.top_k_correct_;
  loss_sum_ += other.loss_sum_;
  for (std::size_t i = 0; i < confusion_.size(); ++i)
    for (std::size_t j = 0; j < confusion_.size(); ++j) confusion_[i][j] += other.confusion_[i][j];
}

std::vector<double> ClassificationMetrics::sums() const {
  std::vector<double> s = {static_cast<double>(count_), static_cast<double>(correct_),
                           static_cast<double>(top_k_correct_), loss_sum_};
  for (const auto& row : confusion_)
    for (std::int64_t n : row) s.push_back(static_cast<double>(n));
  return s;
}

void ClassificationMetrics::set_sums(const std::vector<double>& s) {
  const std::size_t k = confusion_.size();
  if (s.size() != 4 + k * k) throw std::invalid_argument("metric sums of another shape");
  count_ = static_cast<std::int64_t>(s[0]);
  correct_ = static_cast<std::int64_t>(s[1]);
  top_k_correct_ = static_cast<std::int64_t>(s[2]);
  loss_sum_ = s[3];
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < k; ++j) confusion_[i][j] = static_cast<std::int64_t>(s[4 + i * k + j]);
}

double ClassificationMetrics::accuracy() const { return count_ ? static_cast<double>(correct_) / count_ : 0.0; }
double ClassificationMetrics::top_k_accuracy() const {
  return count_ ? static_cast<double>(top_k_correct_) / count_ : 0.0;
}

std::vector<ClassScores> ClassificationMetrics::per_class() const {
  std::vector<ClassScores> out(static_cast<std::size_t>(classes_));
  for (std::size_t c = 0; c < out.size(); ++c) {
    std::int64_t predicted = 0, actual = 0;
    for (std::size_t o = 0; o < out.size(); ++o) {
      predicted += confusion_[o][c];
      actual += confusion_[c][o];
    }
    const auto hit = static_cast<double>(confusion_[c][c]);
    ClassScores& s = out[c];
    s.support = actual;
    s.precision = predicted ? hit / static_cast<double>(predicted) : 0.0;
    s.recall = actual ? hit / static_cast<double>(actual) : 0.0;
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  }
  return out;
}

double ClassificationMetrics::macro_f1() const {
  const auto scores = per_class();
  double sum = 0;
  int present = 0;
  for (std::size_t c = 0; c < scores.size(); ++c) {
    std::int64_t predicted = 0;
    for (std::size_t o = 0; o < scores.size(); ++o) predicted += confusion_[o][c];
    if (scores[c].support == 0 && predicted == 0) continue;  // a class absent from this split
    sum += scores[c].f1;
    ++present;
  }
  return present ? sum / present : 0.0;
}

std::string ClassificationMetrics::to_json(const std::vector<std::string>& names) const {
  nlohmann::json per = nlohmann::json::array();
  const auto scores = per_class();
  for (std::size_t c = 0; c < scores.size(); ++c) {
    per.push_back({{"class", c < names.size() ? names[c] : std::to_string(c)},
                   {"precision", scores[c].precision},
                   {"recall", scores[c].recall},
                   {"f1", scores[c].f1},
                   {"support", scores[c].support}});
  }
  nlohmann::json j = {{"count", count_},     {"loss", loss()},          {"accuracy", accuracy()},
                      {"top" + std::to_string(top_k_) + "_accuracy", top_k_accuracy()},
                      {"macro_f1", macro_f1()}, {"per_class", per}, {"confusion", confusion_}};
  return j.dump(2);
}

std::vector<std::string> ClassificationMetrics::table(const std::vector<std::string>& names) const {
  std::vector<std::string> lines;
  char line[160];
  std::snprintf(line, sizeof line, "%-16s %9s %9s %9s %9s", "class", "precision", "recall", "f1", "support");
  lines.emplace_back(line);
  const auto scores = per_class();
  for (std::size_t c = 0; c < scores.size(); ++c) {
    const std::string name = c < names.size() ? names[c] : std::to_string(c);
    std::snprintf(line, sizeof line, "%-16.16s %9.4f %9.4f %9.4f %9lld", name.c_str(), scores[c].precision,
                  scores[c].recall, scores[c].f1, static_cast<long long>(scores[c].support));
    lines.emplace_back(line);
  }
  std::snprintf(line, sizeof line, "accuracy %.4f  top-%d %.4f  macro F1 %.4f  loss %.4f  (%lld samples)", accuracy(),
                top_k_, top_k_accuracy(), macro_f1(), loss(), static_cast<long long>(count_));
  lines.emplace_back(line);
  return lines;
}

}  // namespace flowrun
