// gloo::Context as torch's ProcessGroupGloo.hpp uses it: through shared_ptr, and
// setTimeout in one inline method (declared only: see ../README.md).
#pragma once

#include <chrono>

namespace gloo {

class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};

}  // namespace gloo
