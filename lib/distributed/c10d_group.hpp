// The c10d objects behind a DataParallelGroup, for the files that talk to c10d
// directly (process_group.cpp, gradient_sync.cpp). Includes c10d's headers: keep it out
// of anything else.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "lib/distributed/process_group.hpp"

namespace flowrun {

struct DataParallelGroup::Impl {
  ProcessPlacement placement;
  std::string device;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::string backend;
  std::uint64_t failures = 0;  // roll calls so far (each uses its own keys)
};

// NCCL's backend on cuda:`device_index` (made this process's current CUDA device first,
// as NCCL expects one GPU per process); throws where this build has no NCCL (nccl_backend.cpp).
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout, int device_index);
bool nccl_built();

}  // namespace flowrun
