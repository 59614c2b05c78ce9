#include "stages/train/strategy.hpp"

#include <stdexcept>

namespace flowrun {

Strategy strategy_from_name(const std::string& name) {
  if (name == "linear_probe") return Strategy::LinearProbe;
  if (name == "full_ft") return Strategy::FullFinetune;
  if (name == "llrd") return Strategy::Llrd;
  if (name == "gradual_unfreeze") return Strategy::GradualUnfreeze;
  throw std::invalid_argument("unknown strategy '" + name + "'; expected linear_probe, full_ft, llrd or gradual_unfreeze");
}

const char* strategy_name(Strategy strategy) {
  switch (strategy) {
    case Strategy::LinearProbe: return "linear_probe";
    case Strategy::FullFinetune: return "full_ft";
    case Strategy::Llrd: return "llrd";
    case Strategy::GradualUnfreeze: return "gradual_unfreeze";
  }
  return "?";
}

void UnfreezePlan::check() const {
  if (at.size() != blocks.size())
    throw std::invalid_argument("unfreeze_at has " + std::to_string(at.size()) + " boundaries but unfreeze_blocks " +
                                std::to_string(blocks.size()) + " entries: give one block count per boundary");
  for (std::size_t i = 1; i < at.size(); ++i)
    if (at[i] <= at[i - 1]) throw std::invalid_argument("unfreeze_at must increase: " + std::to_string(at[i - 1]) +
                                                        " then " + std::to_string(at[i]));
}

int unfrozen_blocks(Strategy strategy, const UnfreezePlan& plan, std::int64_t epoch, std::int64_t step) {
  switch (strategy) {
    case Strategy::LinearProbe: return 0;
    case Strategy::FullFinetune:
    case Strategy::Llrd: return -1;
    case Strategy::GradualUnfreeze: break;
  }
  const std::int64_t now = plan.by_steps ? step : epoch;
  int blocks = 0;
  for (std::size_t i = 0; i < plan.at.size(); ++i)
    if (now >= plan.at[i]) blocks = static_cast<int>(plan.blocks[i]);
  return blocks;
}

bool is_trainable(const std::string& name, int depth, int blocks) {
  if (blocks < 0 || blocks >= depth) return true;
  if (name.rfind("head.", 0) == 0 || name.rfind("norm.", 0) == 0 || name.rfind("fc_norm.", 0) == 0) return true;
  if (name.rfind("blocks.", 0) == 0) return std::stoi(name.substr(7)) >= depth - blocks;
  return false;  // embeddings: only when everything trains
}

}  // namespace flowrun
