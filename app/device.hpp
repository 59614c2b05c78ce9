// Resolves the description's device ("auto", "cpu", "cuda", "cuda:N") with LibTorch,
// the only part of the command line that needs it today. Kept in its own file so
// <torch/...> is compiled once.
#pragma once

#include <string>

namespace flowrun {

// "auto" -> "cuda" when a CUDA device is usable, else "cpu". Throws
// std::runtime_error when CUDA is asked for and none is there (or N is too large).
std::string resolve_device(const std::string& requested);

}  // namespace flowrun
