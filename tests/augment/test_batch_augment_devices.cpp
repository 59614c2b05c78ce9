// The batch stages and to_device on each device: parameterised over cpu and cuda.
// The CUDA cases run only where LibTorch sees a GPU (bench/device_check.sh runs them
// on the GPU machine) and say why they were skipped otherwise. On every device the
// results must equal the CPU's: bit for bit where the operation involves no resampling
// or blending, within one or two grey levels (resampling) or float tolerance (Mixup)
// otherwise.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "flowrun/pipeline.hpp"
#include "stages/batch_augment/mix_ops.hpp"
#include "stages/core/collect.hpp"
#include "stages/messages/batch.hpp"
#include "support/sync_errors.hpp"
#include "support/test_util.hpp"
#include "support/toy_stages.hpp"

namespace flowrun::testing {
namespace {

class OnDevice : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device here (torch::cuda::is_available() is false); bench/device_check.sh runs this case on a GPU";
  }
  // cuda:0, not "cuda": a tensor's device has its index, and Device's == compares it.
  torch::Device device() const {
    return GetParam() == "cuda" ? torch::Device(torch::kCUDA, 0) : torch::Device(GetParam());
  }
};

std::shared_ptr<Batch> random_batch(int n, int size, std::uint64_t seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto batch = std::make_shared<Batch>();
  batch->images = torch::randint(0, 256, {n, 3, size, size}, g, torch::kByte);
  batch->labels = torch::randint(0, 10, {n}, g, torch::kLong);
  batch->indices = torch::arange(100, 100 + n, torch::kLong);
  batch->epoch = 2;
  batch->step = 5;
  batch->dataset = std::make_shared<DatasetInfo>(DatasetInfo{"data", std::vector<std::string>(10, "c"), 1000, 3});
  return batch;
}

std::shared_ptr<Batch> on(const std::shared_ptr<Batch>& batch, const torch::Device& device) {
  auto moved = std::make_shared<Batch>(*batch);
  moved->images = batch->images.to(device);
  moved->labels = batch->labels.to(device);
  return moved;
}

const Batch& through(const std::string& plugin, const std::string& params, const std::shared_ptr<Batch>& batch,
                     const std::string& device, RecordingEmitter& out) {
  auto stage = make_stage(plugin, params, 7, device);
  Message m;
  m.payload = batch;
  m.epoch = batch->epoch;
  m.index = batch->step;
  dynamic_cast<OrderedStage&>(*stage).process(m, out);
  return dynamic_cast<const Batch&>(*out.emitted.back().payload);
}

TEST_P(OnDevice, BatchStagesGiveTheCpusResults) {
  const auto host = random_batch(12, 32, 1);
  struct Case {
    const char* plugin;
    const char* params;
    double tolerance;  // 0: bit for bit
  };
  const Case cases[] = {
      {"batch_flip", R"({"p": 0.5})", 0},
      {"batch_normalize", R"({"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]})", 0},
      {"batch_random_erasing", R"({"p": 0.8, "random_value": true})", 0},
      {"batch_resize", R"({"size": [224]})", 1},
      // Crops on the CPU take ATen's fixed-point uint8 kernel, elsewhere the float passes
      // rounded between (CUDA has no uint8 kernel): the two differ by up to 2 grey levels
      // on random noise (measured on the CPU, the float passes standing in for CUDA's).
      {"batch_random_resized_crop", R"({"size": [224], "scale": [0.5, 1.0]})", 2},
      {"batch_random_resized_crop", R"({"size": [48], "interpolation": "bicubic"})", 2},
      {"mixup_cutmix", R"({"mode": "elem", "label_smoothing": 0.1})", 1},  // uint8 blends round: one level
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.plugin) + " " + c.params);
    RecordingEmitter cpu_out, dev_out;
    const Batch& expected = through(c.plugin, c.params, host, "cpu", cpu_out);
    const Batch& got = through(c.plugin, c.params, on(host, device()), GetParam(), dev_out);
    ASSERT_EQ(got.images.device(), device());
    const torch::Tensor back = got.images.cpu();
    ASSERT_EQ(back.sizes(), expected.images.sizes());
    const torch::Tensor gaps = (back.to(torch::kDouble) - expected.images.to(torch::kDouble)).abs();
    EXPECT_LE(gaps.max().item<double>(), c.tolerance);
    // Rounding may differ here and there, never everywhere (the crops: 0.05 on average).
    EXPECT_LE(gaps.mean().item<double>(), c.tolerance > 0 ? 0.1 : 0);
    if (expected.targets.defined()) {
      ASSERT_TRUE(got.targets.defined());
      EXPECT_LT((got.targets.cpu() - expected.targets).abs().max().item<double>(), 1e-6);
    }
  }
}

TEST_P(OnDevice, MixArithmeticMatchesTheCpuOnFloatBatches) {
  const auto host = random_batch(8, 16, 2);
  const torch::Tensor x = host->images.to(torch::kFloat) / 255;
  std::vector<SampleMix> mixes(8);
  mixes[0] = {0.3, false, {}};
  mixes[1] = {0.75, true, {2, 9, 1, 12}};
  mixes[6] = {0.6, true, {0, 16, 5, 6}};
  for (const auto& m : std::vector<std::vector<SampleMix>>{mixes, {SampleMix{0.42, false, {}}}, {SampleMix{0.5, true, {3, 11, 4, 12}}}}) {
    const MixedBatch cpu = apply_mix(x, host->labels, m, 10, 0.1);
    const MixedBatch dev = apply_mix(x.to(device()), host->labels.to(device()), m, 10, 0.1);
    EXPECT_LT((dev.images.cpu() - cpu.images).abs().max().item<double>(), 1e-6);
    EXPECT_LT((dev.targets.cpu() - cpu.targets).abs().max().item<double>(), 1e-6);
  }
}

// No stage of the data path makes the host wait for the GPU (its per-sample choices are
// made on the host and copied without a sync): every batch stage, Mixup/CutMix in each
// mode, and to_device from pinned and from pageable memory, under CUDA's sync debug
// mode, after one warm-up batch each. On the CPU the same calls run unchecked.
TEST_P(OnDevice, DataPathStagesNeverSynchroniseTheHost) {
  if (GetParam() == "cuda" && !SyncErrors::available()) GTEST_SKIP() << "this LibTorch has no CUDA headers";
  const std::pair<const char*, const char*> stages[] = {
      {"batch_flip", R"({"p": 0.5})"},
      {"batch_normalize", R"({"mean": [0.5], "std": [0.5]})"},
      {"batch_random_erasing", R"({"p": 0.8, "random_value": true})"},
      {"batch_resize", R"({"size": [48]})"},
      {"batch_random_resized_crop", R"({"size": [48], "scale": [0.5, 1.0]})"},
      {"mixup_cutmix", R"({"mode": "batch"})"},
      {"mixup_cutmix", R"({"mode": "pair"})"},
      {"mixup_cutmix", R"({"mode": "elem", "label_smoothing": 0.1})"},
      {"to_device", R"({"depth": 2})"},
  };
  for (const auto& [plugin, params] : stages) {
    SCOPED_TRACE(std::string(plugin) + " " + params);
    const bool transfer = std::string(plugin) == "to_device";
    auto stage = make_stage(plugin, params, 7, GetParam());
    auto& ordered = dynamic_cast<OrderedStage&>(*stage);
    std::vector<std::shared_ptr<Batch>> batches;
    for (int i = 0; i < 5; ++i) {
      auto host = random_batch(8, 32, 40 + static_cast<std::uint64_t>(i));
      host->step = static_cast<std::uint64_t>(i);
      if (transfer && i % 2 && GetParam() == "cuda") host->images = host->images.pin_memory();
      batches.push_back(transfer ? host : on(host, device()));
    }
    RecordingEmitter out;
    const auto process = [&](const std::shared_ptr<Batch>& b) {
      Message m;
      m.payload = b;
      m.epoch = b->epoch;
      m.index = b->step;
      ordered.process(m, out);
    };
    process(batches[0]);  // first use: allocations, tables
    {
      SyncErrors errors(GetParam() == "cuda");
      for (std::size_t i = 1; i < batches.size(); ++i)
        EXPECT_NO_THROW(process(batches[i])) << "batch " << i << " made the host wait for the GPU";
    }
    ordered.finish(out);
    EXPECT_EQ(out.emitted.size(), batches.size());
  }
}

// More batches than `depth` in flight, from pinned and from pageable memory: every one
// arrives whole, on the device, with its labels; indices stay on the host.
TEST_P(OnDevice, ToDeviceDeliversEveryBatchWhole) {
  auto stage = make_stage("to_device", R"({"depth": 2})", 0, GetParam());
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  std::vector<std::shared_ptr<Batch>> sent;
  for (int i = 0; i < 7; ++i) {
    auto b = random_batch(16, 32, 10 + static_cast<std::uint64_t>(i));
    if (i % 2 && GetParam() == "cuda") {
      b->images = b->images.pin_memory();
      b->labels = b->labels.pin_memory();
    }
    b->step = static_cast<std::uint64_t>(i);
    sent.push_back(b);
    Message m;
    m.payload = b;
    m.index = b->step;
    ordered.process(m, out);
  }
  ordered.finish(out);
  ASSERT_EQ(out.emitted.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto& got = dynamic_cast<const Batch&>(*out.emitted[i].payload);
    got.wait_ready();
    EXPECT_EQ(got.images.device(), device());
    EXPECT_EQ(got.labels.device(), device());
    EXPECT_TRUE(got.indices.is_cpu());
    EXPECT_TRUE(got.images.cpu().equal(sent[i]->images)) << "batch " << i;
    EXPECT_TRUE(got.labels.cpu().equal(sent[i]->labels)) << "batch " << i;
    EXPECT_EQ(got.step, sent[i]->step);
    // Labels and images stay readable on the host without waiting for the device (the
    // label check's and the thumbnails').
    if (GetParam() == "cuda") {
      ASSERT_TRUE(got.host_labels.defined());
      EXPECT_TRUE(got.host_labels.is_cpu());
      EXPECT_TRUE(got.host_labels.equal(sent[i]->labels)) << "batch " << i;
      ASSERT_TRUE(got.host_images.defined());
      EXPECT_TRUE(got.host_images.is_cpu());
      EXPECT_TRUE(got.host_images.equal(sent[i]->images)) << "batch " << i;
    }
  }
}

// A batch already on the device (a batch stage ran there before to_device) passes
// through whole: there is nothing to stage on the host.
TEST_P(OnDevice, ToDeviceTakesBatchesAlreadyOnTheDevice) {
  auto stage = make_stage("to_device", "{}", 0, GetParam());
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  auto b = random_batch(8, 32, 3);
  const torch::Tensor images = b->images.clone(), labels = b->labels.clone();
  b->images = b->images.to(device());
  b->labels = b->labels.to(device());
  Message m;
  m.payload = b;
  ordered.process(m, out);
  ordered.finish(out);
  ASSERT_EQ(out.emitted.size(), 1u);
  const auto& got = dynamic_cast<const Batch&>(*out.emitted[0].payload);
  got.wait_ready();
  EXPECT_EQ(got.images.device(), device());
  EXPECT_TRUE(got.images.cpu().equal(images));
  EXPECT_TRUE(got.labels.cpu().equal(labels));
}

// A tiny ViT trained through to_device and the batch stages on the device, end to end
// on real CIFAR-10 JPEGs.
TEST_P(OnDevice, ATinyVitTrainsThroughToDeviceAndBatchStages) {
  const std::string tar = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  const std::string json = R"({"name": "on_device", "seed": 3, "device": ")" + GetParam() + R"(", "prefetch": 256, "nodes": [
      {"id": "data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "train/", "per_class_limit": 6, "epochs": 2}},
      {"id": "decode", "plugin": "jpeg_decode"},
      {"id": "batch", "plugin": "batch", "params": {"batch_size": 20, "drop_last": true}},
      {"id": "to_device", "plugin": "to_device"},
      {"id": "crop", "plugin": "batch_random_resized_crop", "params": {"size": [32], "scale": [0.6, 1.0]}},
      {"id": "flip", "plugin": "batch_flip"},
      {"id": "norm", "plugin": "batch_normalize", "params": {"mean": [0.5], "std": [0.25]}},
      {"id": "mix", "plugin": "mixup_cutmix"},
      {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 32, "depth": 1, "heads": 1,
                                                    "log_every": 1, "threads": 1}},
      {"id": "log", "plugin": "collect"}],
    "edges": ["data -> decode -> batch -> to_device -> crop -> flip -> norm -> mix -> train.train", "train -> log"]})";
  Pipeline p(describe(json));
  p.run();
  const auto items = static_cast<const Collect&>(*p.stage("log")).items();
  int windows = 0;
  for (const auto& item : items)
    if (item.payload.rfind("train ", 0) == 0) ++windows;
  EXPECT_EQ(windows, 6) << "one train window per optimizer step (3 per epoch)";
}

INSTANTIATE_TEST_SUITE_P(Devices, OnDevice, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& device) { return device.param; });

}  // namespace
}  // namespace flowrun::testing
