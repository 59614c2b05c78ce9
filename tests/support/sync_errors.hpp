// Turns c10's sync debug mode to errors for its lifetime, on CUDA: every wait for the
// GPU through c10's checked calls (item(), a copy to the host, a stream sync) then
// throws; event waits and device-wide syncs are not among them. On the CPU (or a LibTorch without CUDA
// headers) it does nothing, so a test can run the same steps there and check its logic.
#pragma once

#if __has_include(<c10/cuda/CUDAFunctions.h>)
#include <c10/cuda/CUDAFunctions.h>
#define FLOWRUN_TEST_SYNC_DEBUG 1
#endif

namespace flowrun::testing {

class SyncErrors {
 public:
  explicit SyncErrors(bool cuda) : on_(cuda) { set(true); }
  ~SyncErrors() { set(false); }
  SyncErrors(const SyncErrors&) = delete;
  SyncErrors& operator=(const SyncErrors&) = delete;

  // Whether this build can check at all (CUDA headers present).
  static constexpr bool available() {
#ifdef FLOWRUN_TEST_SYNC_DEBUG
    return true;
#else
    return false;
#endif
  }

 private:
  void set(bool error) const {
#ifdef FLOWRUN_TEST_SYNC_DEBUG
    using c10::cuda::SyncDebugMode;
    if (on_) c10::cuda::warning_state().set_sync_debug_mode(error ? SyncDebugMode::L_ERROR : SyncDebugMode::L_DISABLED);
#else
    (void)error;
#endif
  }
  bool on_;
};

}  // namespace flowrun::testing
