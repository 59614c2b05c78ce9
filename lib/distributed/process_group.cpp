// The data-parallel group on c10d. ProcessGroupGloo.hpp includes Gloo headers the
// PyTorch wheel does not ship: gloo_declarations/ declares the few types it names
// (README.md there says why that is sound and what checks it).
#define USE_C10D_GLOO 1

#include <ATen/core/grad_mode.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <mutex>
#include <stdexcept>
#include <thread>

#include "lib/distributed/c10d_group.hpp"

namespace flowrun {
namespace {

std::mutex current_mutex;
std::shared_ptr<DataParallelGroup> current;

std::string seconds_text(std::chrono::milliseconds t) {
  const double s = static_cast<double>(t.count()) / 1000.0;
  char text[32];
  std::snprintf(text, sizeof text, "%g s", s);
  return text;
}

c10d::TCPStoreOptions store_options(int port, bool server, int world_size, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = server;
  options.numWorkers = world_size;
  options.waitWorkers = false;
  options.timeout = timeout;
  return options;
}

// Every collective goes through here: c10d's errors (a lost peer, the timeout) become
// one message that says which ranks still answer.
template <typename Collective>
void run_collective(DataParallelGroup& group, const char* what, Collective&& collective) {
  std::string failure;
  try {
    at::NoGradGuard no_grad;  // parameters require gradients; the collectives are not part of the graph
    collective()->wait();
    return;
  } catch (const c10::Error& e) {
    failure = e.what_without_backtrace();
  } catch (const std::exception& e) {
    failure = e.what();
  }
  throw std::runtime_error(group.explain_failure(std::string(what) + ": " + failure, std::chrono::seconds(3)));
}

}  // namespace

DataParallelGroup::DataParallelGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DataParallelGroup::~DataParallelGroup() = default;

std::shared_ptr<DataParallelGroup> DataParallelGroup::connect(const ProcessPlacement& placement,
                                                              const std::string& device,
                                                              std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->placement = placement;
  impl->device = device;
  impl->timeout = timeout;
  const bool host = placement.rank == 0 && !placement.agent_store;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(
        placement.master_addr, store_options(placement.master_port, host, placement.world_size, timeout));
    // Under its own prefix, as torch.distributed's default group: a launcher's store can hold other keys.
    impl->store = c10::make_intrusive<c10d::PrefixStore>("flowrun", tcp);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        std::string(host ? "could not host" : "could not reach") + " the rendezvous at " + placement.master_addr +
        ":" + std::to_string(placement.master_port) + " within " + seconds_text(timeout) + " (" +
        placement.describe() + "): " + e.what() +
        (host ? "" : "; is rank 0 (or the launcher) running, and do MASTER_ADDR/MASTER_PORT name it?"));
  }
  impl->group = c10::make_intrusive<c10d::ProcessGroup>(impl->store, placement.rank, placement.world_size);
  // Gloo always (CPU tensors: metrics, flags), NCCL for CUDA tensors on a CUDA run.
  auto gloo_options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, placement.rank, placement.world_size,
                                                          gloo_options);
  impl->group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  impl->group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  impl->backend = "gloo";
  if (device.rfind("cuda", 0) == 0) {
    const std::size_t colon = device.find(':');
    const int index = colon == std::string::npos ? placement.local_rank : std::stoi(device.substr(colon + 1));
    auto nccl = make_nccl_backend(impl->store, placement.rank, placement.world_size, timeout, index);
    impl->group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
    impl->group->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
    impl->backend = "nccl";
  }
  return std::shared_ptr<DataParallelGroup>(new DataParallelGroup(std::move(impl)));
}

int DataParallelGroup::rank() const { return impl_->placement.rank; }
int DataParallelGroup::size() const { return impl_->placement.world_size; }
const ProcessPlacement& DataParallelGroup::placement() const { return impl_->placement; }
std::string DataParallelGroup::backend() const { return impl_->backend; }
std::chrono::milliseconds DataParallelGroup::timeout() const { return impl_->timeout; }

void DataParallelGroup::all_reduce_sum(at::Tensor& tensor) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::SUM;
  std::vector<at::Tensor> one{tensor};
  run_collective(*this, "all-reduce", [&] { return impl_->group->allreduce(one, options); });
}

void DataParallelGroup::all_reduce_sum(std::vector<double>& values) {
  at::Tensor t = at::tensor(values, at::kDouble);
  all_reduce_sum(t);
  const double* summed = t.data_ptr<double>();
  std::copy(summed, summed + values.size(), values.begin());
}

void DataParallelGroup::all_reduce_max(at::Tensor& tensor) {
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  std::vector<at::Tensor> one{tensor};
  run_collective(*this, "all-reduce (max)", [&] { return impl_->group->allreduce(one, options); });
}

void DataParallelGroup::broadcast(at::Tensor& tensor, int root) {
  c10d::BroadcastOptions options;
  options.rootRank = root;
  std::vector<at::Tensor> one{tensor};
  run_collective(*this, "broadcast", [&] { return impl_->group->broadcast(one, options); });
}

void DataParallelGroup::barrier() {
  run_collective(*this, "barrier", [&] { return impl_->group->barrier(); });
}

std::vector<std::string> DataParallelGroup::all_gather_text(const std::string& key, const std::string& text) {
  const std::string prefix = "gather/" + key + "/";
  std::vector<std::string> texts(static_cast<std::size_t>(size()));
  try {
    impl_->store->set(prefix + std::to_string(rank()), text);
    for (int r = 0; r < size(); ++r) {
      const std::vector<std::uint8_t> bytes = impl_->store->get(prefix + std::to_string(r));
      texts[static_cast<std::size_t>(r)].assign(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(explain_failure("gathering '" + key + "': " + e.what(), std::chrono::seconds(3)));
  }
  return texts;
}

std::string DataParallelGroup::explain_failure(const std::string& what, std::chrono::milliseconds patience) {
  const std::string intro = "data-parallel " + what + " (on rank " + std::to_string(rank()) + " of " +
                            std::to_string(size()) + ", collective timeout " + seconds_text(impl_->timeout) + ")";
  const std::string call = "rollcall/" + std::to_string(++impl_->failures) + "/";
  try {
    impl_->store->set(call + std::to_string(rank()), std::string("here"));
  } catch (const std::exception&) {
    return intro + ": the rendezvous store at " + impl_->placement.master_addr + ":" +
           std::to_string(impl_->placement.master_port) + " is gone too, so its host ended: " +
           (impl_->placement.agent_store ? "the launcher" : "rank 0");
  }
  // Polled with check() (which answers at once) rather than wait() with a timeout, which
  // makes c10d log a socket-timeout warning for every rank that does not answer.
  std::vector<bool> answered(static_cast<std::size_t>(size()), false);
  answered[static_cast<std::size_t>(rank())] = true;
  const auto deadline = std::chrono::steady_clock::now() + patience;
  try {
    for (;;) {
      bool all = true;
      for (int r = 0; r < size(); ++r) {
        auto done = answered[static_cast<std::size_t>(r)];
        if (!done) done = answered[static_cast<std::size_t>(r)] = impl_->store->check({call + std::to_string(r)});
        all = all && done;
      }
      if (all || std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (const std::exception&) {
    return intro + ": the rendezvous store at " + impl_->placement.master_addr + ":" +
           std::to_string(impl_->placement.master_port) + " stopped answering during the roll call";
  }
  std::string lost;
  for (int r = 0; r < size(); ++r)
    if (!answered[static_cast<std::size_t>(r)]) lost += (lost.empty() ? "" : ", ") + std::to_string(r);
  if (lost.empty()) return intro + ": every rank still answers, so the collective itself failed";
  return intro + ": rank " + lost + " did not answer within " + seconds_text(patience) + " (lost)";
}

std::shared_ptr<DataParallelGroup> current_data_parallel_group() {
  std::lock_guard<std::mutex> lock(current_mutex);
  return current;
}

void set_current_data_parallel_group(std::shared_ptr<DataParallelGroup> group) {
  std::lock_guard<std::mutex> lock(current_mutex);
  current = std::move(group);
}

bool writes_run_files() {
  const auto group = current_data_parallel_group();
  return !group || group->rank() == 0;
}

struct RendezvousHost::Server {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

RendezvousHost::RendezvousHost(const std::string& address, int port, int world_size, std::chrono::milliseconds timeout)
    : server_(std::make_unique<Server>()) {
  try {
    server_->store = c10::make_intrusive<c10d::TCPStore>(address, store_options(port, true, world_size, timeout));
  } catch (const std::exception& e) {
    throw std::runtime_error("could not host the rendezvous at " + address + ":" + std::to_string(port) + ": " +
                             e.what());
  }
}

RendezvousHost::~RendezvousHost() = default;

int RendezvousHost::port() const { return server_->store->getPort(); }

}  // namespace flowrun
