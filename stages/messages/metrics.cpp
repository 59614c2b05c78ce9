#include "stages/messages/metrics.hpp"

#include <cstdio>

namespace flowrun {

std::string Metrics::describe() const {
  std::string s = scope + " epoch " + std::to_string(epoch) + " step " + std::to_string(step);
  for (const auto& [name, value] : values) {
    char text[64];
    std::snprintf(text, sizeof text, " %s=%.6g", name.c_str(), value);
    s += text;
  }
  if (!note.empty()) s += " note=" + note;
  return s;
}

}  // namespace flowrun
