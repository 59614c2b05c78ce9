#include "stages/messages/batch.hpp"

namespace flowrun {

std::string Batch::describe() const {
  std::string shape;
  for (std::int64_t d : images.sizes()) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  return "batch " + std::to_string(step) + " epoch " + std::to_string(epoch) + " " + shape + " " +
         std::string(images.dtype().name());
}

}  // namespace flowrun
