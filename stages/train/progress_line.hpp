// The train stage's live status line on a terminal (log::status): epoch, step,
// loss, accuracy, learning rate, images/s and the time left.
#pragma once

#include <chrono>
#include <cstdint>

namespace flowrun {

struct ProgressFigures {
  std::uint64_t epoch = 0, epochs = 0;  // epochs 0 = not known
  std::int64_t step = 0, total_steps = 0;
  double loss = 0, accuracy = 0, lr = 0, images_per_s = 0;
};

class ProgressLine {
 public:
  // Shows the figures, at most 4 times a second and only when the log is a terminal.
  // The time left is extrapolated from the steps this process has taken (not those
  // restored from a checkpoint).
  void show(const ProgressFigures& f);

 private:
  std::int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point first_at_, last_shown_;
};

}  // namespace flowrun
