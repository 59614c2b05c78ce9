#include "stages/train/progress_line.hpp"

#include <cstdio>
#include <string>

#include "flowrun/logging.hpp"

namespace flowrun {

void ProgressLine::show(const ProgressFigures& f) {
  if (!log::interactive()) return;
  const auto now = std::chrono::steady_clock::now();
  if (first_step_ < 0) {
    first_step_ = f.step;
    first_at_ = now;
  }
  if (now - last_shown_ < std::chrono::milliseconds(250)) return;
  last_shown_ = now;
  const double secs = std::chrono::duration<double>(now - first_at_).count();
  const std::int64_t done_here = f.step - first_step_;
  std::string eta = "--:--";
  if (done_here > 0 && f.total_steps > f.step) {
    const auto left = static_cast<long>(secs / static_cast<double>(done_here) * static_cast<double>(f.total_steps - f.step));
    char text[32];
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
    eta = text;
  }
  const std::string epochs = f.epochs > 0 ? "/" + std::to_string(f.epochs) : "";
  log::status("epoch " + std::to_string(f.epoch + 1) + epochs + "  step " + std::to_string(f.step) + "/" +
              std::to_string(f.total_steps) + "  loss " + log::fixed(f.loss, 4) + "  acc " + log::fixed(f.accuracy, 3) +
              "  lr " + log::fixed(f.lr * 1e3, 3) + "e-3  " + std::to_string(static_cast<long>(f.images_per_s)) +
              " img/s  ETA " + eta);
}

}  // namespace flowrun
