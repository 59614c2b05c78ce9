#include "stages/messages/evaluation.hpp"

#include <algorithm>

namespace flowrun {

std::string Evaluation::describe() const {
  return "evaluation epoch " + std::to_string(epoch) + " step " + std::to_string(step) + " accuracy " +
         std::to_string(metrics ? metrics->accuracy() : 0.0) + ", " + std::to_string(worst.size()) + " worst samples";
}

void WorstSamples::add(Misclassified sample) {
  if (!wants(sample.loss)) return;
  const auto at = std::upper_bound(worst_.begin(), worst_.end(), sample.loss,
                                   [](double loss, const Misclassified& m) { return loss > m.loss; });
  worst_.insert(at, std::move(sample));
  if (worst_.size() > n_) worst_.pop_back();
}

}  // namespace flowrun
