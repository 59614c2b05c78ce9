// to_device: hands batches to the run's device ahead of the step. On the CPU it
// passes each batch on untouched (the same payload: no copy, no cost). On CUDA the
// copy runs on a side stream while the step computes (cuda_transfer.cpp), and the
// batch travels on at once with a fence that its consumers wait on.
//
//   {"id": "to_device", "plugin": "to_device", "params": {"depth": 2}}
#include <stdexcept>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "stages/batch_augment/batch_augment_plugins.hpp"
#include "stages/batch_augment/batch_transform.hpp"
#include "stages/batch_augment/device_transfer.hpp"

namespace flowrun {
namespace {

struct ToDeviceOptions {
  int depth = 2;
  template <typename D>
  static void declare(D& d) {
    d(&ToDeviceOptions::depth, "depth", "copies in flight at most (CUDA); the oldest is waited for beyond it").range(1, 64);
  }
};

class ToDevice : public OrderedStage {
 public:
  explicit ToDevice(const StageArgs& args) : OrderedStage(args), device_(args.device) {
    if (device_.rfind("cuda", 0) == 0) transfer_ = make_cuda_transfer(device_, read_options<ToDeviceOptions>(args.params).depth);
  }

  void process(Message in, Emitter& out) override {
    if (transfer_) {
      auto host = std::static_pointer_cast<const Batch>(in.payload);
      in.as<Batch>();  // checks the type before the cast is relied on
      out.emit(0, transfer_->move(host), in.epoch, in.index, std::move(in.lease));
      return;
    }
    out.emit(0, std::move(in.payload), in.epoch, in.index, std::move(in.lease));
  }

  void finish(Emitter&) override {
    if (transfer_) transfer_->drain();
  }
  void stop(StopReason) override {
    if (transfer_) transfer_->drain();
  }

 private:
  std::string device_;
  std::unique_ptr<DeviceTransfer> transfer_;
};

}  // namespace

PluginInfo to_device_plugin() {
  PluginInfo p = batch_transform_plugin(
      "to_device", "Moves batches to the run's device ahead of the step (CUDA: side stream, pinned memory)",
      "On CUDA (the run's device: \"device\": \"auto\" picks it when present), images, labels and\n"
      "soft targets are copied with non_blocking from page-locked memory on a side stream: from\n"
      "the batch's own tensors when the batch stage pinned them (its pin_memory: auto does on\n"
      "CUDA), otherwise through recycled pinned buffers. The batch goes on at once with a CUDA\n"
      "event that the consumer's stream waits on, so the host never waits for the copy; at most\n"
      "`depth` copies are in flight, and host buffers are reused only after their copy completed.\n"
      "Dataset indices and keys stay on the host, and the batch keeps the host's labels and images\n"
      "beside the device's: the label check and the reports' thumbnails read those, never waiting\n"
      "for the device. On the CPU the stage passes batches through untouched, at no cost, so one\n"
      "description serves both.\n"
      "\n"
      "  {\"id\": \"to_device\", \"plugin\": \"to_device\", \"params\": {\"depth\": 2}}");
  p.outputs = {{"out", kBatchKind, "the batches on the run's device"}};
  declare_options<ToDeviceOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<ToDevice>(args); };
  return p;
}

}  // namespace flowrun
