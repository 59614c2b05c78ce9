// Moving batches to a CUDA device ahead of need (the to_device stage's CUDA half).
// The copy is queued on a side stream from pinned host memory and the batch leaves
// at once, carrying a fence that its consumers' streams wait on; the host memory is
// recycled only after the copy is seen complete. Kept behind this interface so that
// only cuda_transfer.cpp includes CUDA headers.
#pragma once

#include <memory>
#include <string>

#include "stages/messages/batch.hpp"

namespace flowrun {

class DeviceTransfer {
 public:
  virtual ~DeviceTransfer() = default;
  // The batch with images, labels and targets on the device (indices and keys stay on
  // the host). Returns before the copy completes when fewer than `depth` are in flight;
  // otherwise first waits for the oldest.
  virtual std::shared_ptr<const Batch> move(const std::shared_ptr<const Batch>& host) = 0;
  // Waits for every copy in flight and lets go of their host buffers.
  virtual void drain() = 0;
};

// Throws where this build of LibTorch has no CUDA support.
std::unique_ptr<DeviceTransfer> make_cuda_transfer(const std::string& device, int depth);
bool cuda_transfer_compiled();

}  // namespace flowrun
