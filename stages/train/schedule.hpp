// Learning-rate schedules by optimizer step: linear warmup, then cosine, linear or
// constant. The factor multiplies each parameter group's peak learning rate.
//
//   warmup   step s < W:  (s + 1) / W            (the first step is not wasted at 0)
//   cosine   s >= W:      m + (1 - m) * (1 + cos(pi * p)) / 2,  p = (s - W) / (T - W)
//   linear   s >= W:      m + (1 - m) * (1 - p)
//   constant s >= W:      1
// with T the total optimizer steps and m = min_lr_ratio (final lr / peak lr).
#pragma once

#include <cstdint>
#include <string>

namespace flowrun {

enum class ScheduleKind { Cosine, Linear, Constant };
ScheduleKind schedule_kind(const std::string& name);  // "cosine" | "linear" | "constant"

struct LrSchedule {
  ScheduleKind kind = ScheduleKind::Cosine;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 1;
  double min_lr_ratio = 0.0;

  // Warmup as steps, or as a fraction of training when warmup_steps < 0.
  static LrSchedule make(ScheduleKind kind, std::int64_t total_steps, std::int64_t warmup_steps,
                         double warmup_fraction, double min_lr_ratio);
  double factor(std::int64_t step) const;
};

}  // namespace flowrun
