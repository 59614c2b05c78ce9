// NCCL's backend for CUDA runs. ProcessGroupNCCL.hpp needs USE_C10D_NCCL and nccl.h,
// which the nvidia-nccl wheel (a dependency of the CUDA torch wheel) ships; the build
// defines FLOWRUN_HAVE_NCCL where it found it (CMakeLists.txt).
#ifdef FLOWRUN_HAVE_NCCL
#define USE_C10D_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <stdexcept>

#include "lib/distributed/c10d_group.hpp"

namespace flowrun {

#ifdef FLOWRUN_HAVE_NCCL
bool nccl_built() { return true; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int device_index) {
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}
#else
bool nccl_built() { return false; }

c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                    std::chrono::milliseconds, int) {
  throw std::runtime_error("this flowrun was built without NCCL (nccl.h was not found in the virtual environment's "
                           "nvidia-nccl package): data-parallel training on CUDA needs it; rebuild after "
                           "scripts/setup.sh");
}
#endif

}  // namespace flowrun
