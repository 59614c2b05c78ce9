#include "stages/train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace flowrun {

ScheduleKind schedule_kind(const std::string& name) {
  if (name == "cosine") return ScheduleKind::Cosine;
  if (name == "linear") return ScheduleKind::Linear;
  if (name == "constant") return ScheduleKind::Constant;
  throw std::invalid_argument("unknown schedule '" + name + "'; expected cosine, linear or constant");
}

LrSchedule LrSchedule::make(ScheduleKind kind, std::int64_t total_steps, std::int64_t warmup_steps,
                            double warmup_fraction, double min_lr_ratio) {
  LrSchedule s;
  s.kind = kind;
  s.total_steps = std::max<std::int64_t>(total_steps, 1);
  s.warmup_steps = warmup_steps >= 0 ? warmup_steps
                                     : static_cast<std::int64_t>(std::llround(warmup_fraction * s.total_steps));
  s.warmup_steps = std::min(s.warmup_steps, s.total_steps);
  s.min_lr_ratio = min_lr_ratio;
  return s;
}

double LrSchedule::factor(std::int64_t step) const {
  if (step < warmup_steps) return static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (kind == ScheduleKind::Constant) return 1.0;
  const std::int64_t span = total_steps - warmup_steps;
  const double p = span > 0 ? std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span)) : 1.0;
  const double shape = kind == ScheduleKind::Cosine ? 0.5 * (1.0 + std::cos(M_PI * p)) : 1.0 - p;
  return min_lr_ratio + (1.0 - min_lr_ratio) * shape;
}

}  // namespace flowrun
