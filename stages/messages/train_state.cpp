#include "stages/messages/train_state.hpp"

namespace flowrun {

const at::Tensor* TrainState::find(const std::string& name) const {
  for (const auto& [key, tensor] : tensors)
    if (key == name) return &tensor;
  return nullptr;
}

std::int64_t TrainState::counter(const std::string& name, std::int64_t fallback) const {
  const auto it = counters.find(name);
  return it == counters.end() ? fallback : it->second;
}

double TrainState::value(const std::string& name, double fallback) const {
  const auto it = values.find(name);
  return it == values.end() ? fallback : it->second;
}

std::string TrainState::describe() const {
  return "train_state step " + std::to_string(step) + " epoch " + std::to_string(epoch) + " (" + reason + "), " +
         std::to_string(tensors.size()) + " tensors";
}

}  // namespace flowrun
