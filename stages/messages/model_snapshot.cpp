#include "stages/messages/model_snapshot.hpp"

#include <algorithm>

namespace flowrun {

void EvaluationAnswers::add(EvaluationAnswer answer) {
  std::lock_guard<std::mutex> lock(mutex_);
  answers_.push_back(std::move(answer));
}

std::vector<EvaluationAnswer> EvaluationAnswers::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<EvaluationAnswer> out = std::move(answers_);
  answers_.clear();
  std::sort(out.begin(), out.end(), [](const EvaluationAnswer& a, const EvaluationAnswer& b) { return a.node < b.node; });
  return out;
}

ModelSnapshot::ModelSnapshot(std::shared_ptr<EvaluationAnswers> answers, std::function<void()> on_release)
    : answers_(std::move(answers)), on_release_(std::move(on_release)) {}

ModelSnapshot::~ModelSnapshot() {
  // The modules go first: what the train stage does once woken must not race with a
  // last reference dropped here.
  model = nullptr;
  ema = nullptr;
  answers_->mark_released();
  if (on_release_) {
    try {
      on_release_();
    } catch (...) {  // a destructor must not throw; the run reports a stage that never woke
    }
  }
}

std::string ModelSnapshot::point() const {
  if (final) return "after training";
  if (after_epoch_end) return "after epoch " + std::to_string(epoch);
  return "at step " + std::to_string(step) + ", epoch " + std::to_string(epoch);
}

std::string ModelSnapshot::describe() const {
  return "model " + point() + " (step " + std::to_string(step) + (ema ? ", with EMA" : "") + ")";
}

}  // namespace flowrun
