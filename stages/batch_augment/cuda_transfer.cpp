// to_device on CUDA: pinned host buffers, a non-blocking copy on a side stream, a
// CUDA event the consumer's stream waits on, at most `depth` copies in flight, host
// buffers reused only after their copy has completed.
//
// Consumers compute on their thread's current stream (the default stream unless a
// stage sets another). The fence makes that stream wait for the copy's event and
// records the copied tensors as used on it, so the caching allocator does not hand
// their memory to the side stream again before the consumer is done with it.
#include "stages/batch_augment/device_transfer.hpp"

#include <ATen/ATen.h>

#include <deque>
#include <stdexcept>
#include <vector>

#if __has_include(<c10/cuda/CUDAStream.h>) && __has_include(<ATen/cuda/CUDAEvent.h>)
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define FLOWRUN_CUDA_TRANSFER 1
#endif

namespace flowrun {

#ifdef FLOWRUN_CUDA_TRANSFER
namespace {

class CudaFence : public TransferFence {
 public:
  CudaFence(std::shared_ptr<at::cuda::CUDAEvent> copied, std::vector<at::Tensor> tensors, c10::DeviceIndex device)
      : copied_(std::move(copied)), tensors_(std::move(tensors)), device_(device) {}

  void wait() const override {
    const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream(device_);
    copied_->block(stream);  // cudaStreamWaitEvent: the host does not wait
    for (const at::Tensor& t : tensors_)
      if (t.defined()) t.record_stream(stream);
  }

 private:
  std::shared_ptr<at::cuda::CUDAEvent> copied_;
  std::vector<at::Tensor> tensors_;
  c10::DeviceIndex device_;
};

class CudaTransfer : public DeviceTransfer {
 public:
  CudaTransfer(const std::string& device, int depth)
      : device_(resolve(device)), depth_(static_cast<std::size_t>(depth)),
        side_(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index())) {}

  ~CudaTransfer() override { drain(); }

  std::shared_ptr<const Batch> move(const std::shared_ptr<const Batch>& host) override {
    retire_completed();
    while (in_flight_.size() >= depth_) retire_oldest();
    InFlight entry;
    entry.host = host;
    auto out = std::make_shared<Batch>(*host);
    {
      // A batch already on this GPU (batch stages ran there) was made on the calling
      // thread's current stream, after its own fence: the side stream, whose event the
      // new fence carries, waits for both.
      if (on_a_gpu(*host)) {
        at::cuda::CUDAEvent made(cudaEventDisableTiming);
        made.record(c10::cuda::getCurrentCUDAStream(device_.index()));
        made.block(side_);
      }
      c10::cuda::CUDAStreamGuard on_side(side_);
      host->wait_ready();
      out->images = copy(host->images, entry);
      out->labels = copy(host->labels, entry);
      if (host->labels.defined() && !host->labels.is_cuda()) out->host_labels = host->labels;
      if (host->images.defined() && !host->images.is_cuda()) out->host_images = host->images;
      out->targets = copy(host->targets, entry);
      entry.copied = std::make_shared<at::cuda::CUDAEvent>(cudaEventDisableTiming);
      entry.copied->record(side_);
    }
    out->fence = std::make_shared<CudaFence>(entry.copied, std::vector<at::Tensor>{out->images, out->labels, out->targets},
                                             device_.index());
    // Only copies from host memory hold buffers to recycle or keep alive; a batch that was
    // on a GPU already is not waited for here (its event may trail the queued steps).
    if (entry.from_host) in_flight_.push_back(std::move(entry));
    return out;
  }

  void drain() override {
    while (!in_flight_.empty()) retire_oldest();
  }

 private:
  struct InFlight {
    std::shared_ptr<const Batch> host;   // its pinned tensors must outlive the copy
    std::vector<at::Tensor> staging;     // pinned copies of pageable tensors, back to the pool after
    std::shared_ptr<at::cuda::CUDAEvent> copied;
    bool from_host = false;              // some tensor was copied from host memory
  };

  static bool on_a_gpu(const Batch& b) {
    return (b.images.defined() && b.images.is_cuda()) || (b.labels.defined() && b.labels.is_cuda()) ||
           (b.targets.defined() && b.targets.is_cuda());
  }

  static at::Device resolve(const std::string& name) {
    at::Device d(name);
    if (!d.is_cuda()) throw std::invalid_argument("to_device: '" + name + "' is not a CUDA device");
    return d.has_index() ? d : at::Device(at::kCUDA, c10::cuda::current_device());
  }

  // A pinned source for a non-blocking copy: the tensor itself when the batch stage
  // pinned it, else a recycled pinned buffer filled on the host.
  at::Tensor copy(const at::Tensor& t, InFlight& entry) {
    if (!t.defined()) return t;
    // Already on a GPU (a batch stage ran there first): no host staging to do. From
    // another GPU, ATen's copy waits for that GPU's current stream.
    if (t.is_cuda()) return t.device() == device_ ? t : t.to(device_, /*non_blocking=*/true);
    entry.from_host = true;
    at::Tensor source = t;
    if (!t.is_pinned()) {
      source = take_staging(t);
      source.copy_(t);
      entry.staging.push_back(source);
    }
    return source.to(device_, /*non_blocking=*/true);
  }

  at::Tensor take_staging(const at::Tensor& like) {
    for (std::size_t i = 0; i < free_.size(); ++i) {
      if (free_[i].sizes() == like.sizes() && free_[i].scalar_type() == like.scalar_type()) {
        at::Tensor t = free_[i];
        free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        return t;
      }
    }
    return at::empty(like.sizes(), like.options().pinned_memory(true));
  }

  void retire_completed() {
    while (!in_flight_.empty() && in_flight_.front().copied->query()) release_front();
  }
  void retire_oldest() {
    in_flight_.front().copied->synchronize();
    release_front();
  }
  void release_front() {
    InFlight& done = in_flight_.front();
    for (at::Tensor& t : done.staging)
      if (free_.size() < kMaxStaging) free_.push_back(std::move(t));
    in_flight_.pop_front();
  }

  static constexpr std::size_t kMaxStaging = 16;
  at::Device device_;
  std::size_t depth_;
  c10::cuda::CUDAStream side_;
  std::deque<InFlight> in_flight_;
  std::vector<at::Tensor> free_;
};

}  // namespace

std::unique_ptr<DeviceTransfer> make_cuda_transfer(const std::string& device, int depth) {
  return std::make_unique<CudaTransfer>(device, depth);
}
bool cuda_transfer_compiled() { return true; }

#else

std::unique_ptr<DeviceTransfer> make_cuda_transfer(const std::string& device, int) {
  throw std::runtime_error("to_device: device '" + device + "' needs LibTorch with CUDA; this build has none");
}
bool cuda_transfer_compiled() { return false; }

#endif

}  // namespace flowrun
