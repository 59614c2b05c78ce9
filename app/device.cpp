#include "device.hpp"

#include <torch/cuda.h>
#include <torch/headeronly/version.h>

#include <stdexcept>

#if __has_include(<c10/cuda/CUDAFunctions.h>)
#include <c10/cuda/CUDAFunctions.h>
#define FLOWRUN_SYNC_DEBUG 1
#endif

namespace flowrun {

std::string resolve_device(const std::string& requested) {
  if (requested == "cpu") return "cpu";
  const std::size_t available = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  if (requested == "auto") return available > 0 ? "cuda" : "cpu";
  std::size_t index = 0;
  if (requested.rfind("cuda:", 0) == 0) index = std::stoul(requested.substr(5));
  if (index >= available) {
    throw std::runtime_error("device \"" + requested + "\" was asked for, but this machine has " +
                             std::to_string(available) + " usable CUDA device(s); use \"auto\" or \"cpu\"");
  }
  return requested;
}

std::string runtime_summary() {
  const std::size_t available = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  return std::string("LibTorch ") + TORCH_VERSION + "; CUDA devices usable here: " + std::to_string(available);
}

bool warn_on_host_syncs() {
#ifdef FLOWRUN_SYNC_DEBUG
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  return true;
#else
  return false;
#endif
}

}  // namespace flowrun
