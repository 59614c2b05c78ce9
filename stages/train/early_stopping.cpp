#include "stages/train/early_stopping.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace flowrun {

EarlyStopping::EarlyStopping(EarlyStoppingConfig config) : config_(std::move(config)) {
  if (config_.mode == "auto") maximize_ = config_.metric.find("loss") == std::string::npos;
  else if (config_.mode == "max" || config_.mode == "min") maximize_ = config_.mode == "max";
  else throw std::invalid_argument("early stopping mode must be max, min or auto, got '" + config_.mode + "'");
  if (config_.patience < 1) throw std::invalid_argument("early stopping patience must be at least 1");
  best_ = maximize_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

bool EarlyStopping::update(const std::map<std::string, double>& values) {
  if (!enabled()) return false;
  const auto it = values.find(config_.metric);
  if (it == values.end()) {
    std::string known;
    for (const auto& [name, value] : values) known += (known.empty() ? "" : ", ") + name;
    throw std::runtime_error("early_stopping_metric '" + config_.metric + "' is not an evaluation metric; expected one of: " +
                             known);
  }
  const double value = it->second;
  const bool improved = std::isfinite(value) && (maximize_ ? value > best_ + config_.min_delta : value < best_ - config_.min_delta);
  if (improved) {
    best_ = value;
    best_at_ = seen_;
    bad_ = 0;
  } else {
    ++bad_;
  }
  ++seen_;
  return bad_ >= config_.patience;
}

std::string EarlyStopping::reason() const {
  return "early stopping: eval " + config_.metric + " has not " + (maximize_ ? "risen" : "fallen") + " by more than " +
         std::to_string(config_.min_delta) + " for " + std::to_string(bad_) + " evaluation(s); best " +
         std::to_string(best_) + " after evaluation " + std::to_string(best_at_ + 1) + " of " + std::to_string(seen_);
}

void EarlyStopping::restore(double best, std::int64_t bad, std::int64_t best_at, std::int64_t seen) {
  best_ = best;
  bad_ = bad;
  best_at_ = best_at;
  seen_ = seen;
}

}  // namespace flowrun
