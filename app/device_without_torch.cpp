// Device resolution for builds without LibTorch (-DFLOWRUN_WITH_TORCH=OFF): CPU only.
#include <stdexcept>

#include "device.hpp"

namespace flowrun {

std::string resolve_device(const std::string& requested) {
  if (requested == "auto" || requested == "cpu") return "cpu";
  throw std::runtime_error("device \"" + requested + "\" needs a build with LibTorch (FLOWRUN_WITH_TORCH=ON)");
}

}  // namespace flowrun
