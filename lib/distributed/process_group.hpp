// The data-parallel process group: this process joined to the others of its job
// through c10d (a TCPStore for the rendezvous; Gloo on the CPU, NCCL on CUDA), as
// torch.distributed's default group is. Header free of LibTorch: tensors are passed by
// reference (at::Tensor is complete wherever they are made).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/distributed/placement.hpp"

namespace at {
class Tensor;
}

namespace flowrun {

class DataParallelGroup {
 public:
  struct Impl;  // the c10d objects (c10d_group.hpp)

  // Connects to the rendezvous (rank 0 hosts the TCPStore at MASTER_ADDR:MASTER_PORT
  // unless the launcher does) and makes the backend for `device`: Gloo for "cpu",
  // NCCL for "cuda:N". Every collective fails after `timeout` without an answer.
  // Throws std::runtime_error naming the address when the others cannot be reached.
  static std::shared_ptr<DataParallelGroup> connect(const ProcessPlacement& placement, const std::string& device,
                                                    std::chrono::milliseconds timeout);
  ~DataParallelGroup();
  DataParallelGroup(const DataParallelGroup&) = delete;
  DataParallelGroup& operator=(const DataParallelGroup&) = delete;

  int rank() const;
  int size() const;
  const ProcessPlacement& placement() const;
  std::string backend() const;  // "gloo" or "nccl"
  std::chrono::milliseconds timeout() const;

  // Collectives on one contiguous tensor, in place, each waited for (many tensors: flatten
  // them first, as broadcast_from_rank0 does). On a failure (a rank lost, the timeout)
  // they throw std::runtime_error saying which ranks still answer (see explain_failure).
  void all_reduce_sum(at::Tensor& tensor);
  void all_reduce_sum(std::vector<double>& values);  // host numbers (metric totals)
  void all_reduce_max(at::Tensor& tensor);
  void broadcast(at::Tensor& tensor, int root = 0);
  void barrier();
  // Every rank's string, in rank order (through the store: small messages only).
  std::vector<std::string> all_gather_text(const std::string& key, const std::string& text);

  // After a collective failed: asks every rank to check in through the store (hosted by
  // the launcher or rank 0) and waits `patience` for them; the message names the ranks
  // that did not answer ("rank 1 did not answer within 3 s: lost"), or that the
  // rendezvous host is gone.
  std::string explain_failure(const std::string& what, std::chrono::milliseconds patience);

  // A stop asked of this rank (SIGINT/SIGTERM): the train stage shares it with the
  // other ranks at its next step, so that every rank stops after the same one.
  void request_stop() { stop_requested_ = true; }
  bool stop_requested() const { return stop_requested_; }

  Impl& impl() { return *impl_; }

 private:
  explicit DataParallelGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> stop_requested_{false};
};

// The process's group, once `flowrun run` has connected it; null in a single-process run.
std::shared_ptr<DataParallelGroup> current_data_parallel_group();
void set_current_data_parallel_group(std::shared_ptr<DataParallelGroup> group);
// Whether this process writes the run's files: alone, or rank 0 of a data-parallel job.
bool writes_run_files();

// A TCPStore hosted by a launcher (flowrun launch) for its ranks, as torchrun's agent
// does: every rank connects as a client, so the store outlives any one rank and a lost
// rank can be named. Binds `port` (0 = any free one; port() says which).
class RendezvousHost {
 public:
  RendezvousHost(const std::string& address, int port, int world_size, std::chrono::milliseconds timeout);
  ~RendezvousHost();
  int port() const;

 private:
  struct Server;
  std::unique_ptr<Server> server_;
};

}  // namespace flowrun
