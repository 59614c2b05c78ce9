// The batch twins against their per-sample CPU twins, stage against stage under the
// same node id and seed: flip, normalize and random erasing bit-identical; resize
// and random resized crop within one grey level (PIL's fixed point against float32
// passes), most pixels identical. Then to_device on the CPU (the same payload).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "stages/messages/batch.hpp"
#include "stages/messages/sample.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

constexpr std::uint64_t kEpoch = 3;

struct Samples {
  std::vector<Message> messages;  // ImageSample payloads, index = dataset index
};

Samples random_samples(int n, int h, int w, std::uint64_t seed) {
  Samples s;
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    auto sample = std::make_shared<ImageSample>();
    sample->image = Image::u8_hwc(h, w, 3);
    for (auto& v : sample->image.u8) v = static_cast<std::uint8_t>(rng.below(256));
    sample->info = SampleInfo(i % 10, "s" + std::to_string(i));
    Message m;
    m.payload = sample;
    m.epoch = kEpoch;
    m.index = static_cast<std::uint64_t>(1000 + 7 * i);  // dataset indices, not positions
    s.messages.push_back(m);
  }
  return s;
}

// One sample's image as (C, H, W): uint8 from HWC, float32 as stored.
torch::Tensor chw(const Image& image) {
  if (image.type == Image::Type::F32_CHW)
    return torch::from_blob(const_cast<float*>(image.f32.data()), {image.channels, image.height, image.width}, torch::kFloat).clone();
  return torch::from_blob(const_cast<std::uint8_t*>(image.u8.data()), {image.height, image.width, image.channels}, torch::kByte)
      .permute({2, 0, 1})
      .contiguous();
}

std::shared_ptr<Batch> batch_of(const std::vector<Message>& samples) {
  auto batch = std::make_shared<Batch>();
  std::vector<torch::Tensor> images;
  std::vector<std::int64_t> labels, indices;
  for (const Message& m : samples) {
    images.push_back(chw(m.as<ImageSample>().image));
    labels.push_back(m.as<ImageSample>().info.label);
    indices.push_back(static_cast<std::int64_t>(m.index));
  }
  batch->images = torch::stack(images);
  batch->labels = torch::tensor(labels);
  batch->indices = torch::tensor(indices);
  batch->epoch = kEpoch;
  return batch;
}

std::vector<Message> through_cpu_twin(const std::string& plugin, const std::string& params, const std::vector<Message>& in) {
  auto stage = make_stage(plugin, params, 42);
  auto& map = dynamic_cast<MapStage&>(*stage);
  std::vector<Message> out;
  for (const Message& m : in) {
    Message result = m;
    result.payload = map.process(m);
    out.push_back(result);
  }
  return out;
}

torch::Tensor through_batch_twin(const std::string& plugin, const std::string& params, const std::shared_ptr<Batch>& batch) {
  auto stage = make_stage(plugin, params, 42);
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  Message m;
  m.payload = batch;
  m.epoch = batch->epoch;
  RecordingEmitter out;
  ordered.process(m, out);
  return dynamic_cast<const Batch&>(*out.emitted.at(0).payload).images;
}

// How far the twins' images are apart: the largest difference and the share of equal values.
struct Gap {
  double max = 0;
  double equal_share = 0;
};
Gap gap(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(a.scalar_type(), b.scalar_type());
  const torch::Tensor d = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs();
  return {d.max().item<double>(), d.eq(0).to(torch::kDouble).mean().item<double>()};
}

TEST(BatchTwins, FlipIsBitIdenticalAndFlipsTheSameSamples) {
  const Samples s = random_samples(32, 6, 9, 1);
  const torch::Tensor cpu = batch_of(through_cpu_twin("horizontal_flip", R"({"p": 0.5})", s.messages))->images;
  const auto input = batch_of(s.messages);
  const torch::Tensor twin = through_batch_twin("batch_flip", R"({"p": 0.5})", input);
  EXPECT_TRUE(twin.equal(cpu));
  const auto flipped = twin.ne(input->images).flatten(1).any(1).sum().item<int>();
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, 27);
}

TEST(BatchTwins, NormalizeIsBitIdentical) {
  const Samples s = random_samples(8, 5, 7, 2);
  const std::string params = R"({"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616]})";
  const torch::Tensor cpu = batch_of(through_cpu_twin("normalize", params, s.messages))->images;
  const torch::Tensor twin = through_batch_twin("batch_normalize", params, batch_of(s.messages));
  ASSERT_EQ(twin.scalar_type(), torch::kFloat);
  EXPECT_TRUE(twin.equal(cpu)) << "max difference " << (twin - cpu).abs().max().item<double>();
}

TEST(BatchTwins, ResizeIsWithinOneGreyLevel) {
  const Samples s = random_samples(4, 32, 24, 3);
  for (const std::string params : {R"({"size": [224]})", R"({"size": [20, 50], "interpolation": "bicubic"})",
                                    R"({"size": [13]})", R"({"size": [224], "interpolation": "bicubic"})"}) {
    SCOPED_TRACE(params);
    const torch::Tensor cpu = batch_of(through_cpu_twin("resize", params, s.messages))->images;
    const torch::Tensor twin = through_batch_twin("batch_resize", params, batch_of(s.messages));
    const Gap g = gap(twin, cpu);
    EXPECT_LE(g.max, 1.0);
    EXPECT_GT(g.equal_share, 0.98);
  }
}

TEST(BatchTwins, RandomResizedCropDrawsTheSameWindowsWithinOneGreyLevel) {
  const Samples s = random_samples(16, 32, 32, 4);
  for (const std::string params : {R"({"size": [224], "scale": [0.5, 1.0]})", R"({"size": [24, 20], "interpolation": "bicubic"})"}) {
    SCOPED_TRACE(params);
    const torch::Tensor cpu = batch_of(through_cpu_twin("random_resized_crop", params, s.messages))->images;
    const torch::Tensor twin = through_batch_twin("batch_random_resized_crop", params, batch_of(s.messages));
    const Gap g = gap(twin, cpu);  // another window would differ by tens of grey levels
    EXPECT_LE(g.max, 1.0);
    EXPECT_GT(g.equal_share, 0.98);
  }
}

TEST(BatchTwins, RandomErasingIsBitIdenticalOnUint8AndFloat) {
  const Samples s = random_samples(24, 12, 10, 5);
  const std::string norm = R"({"mean": [0.5], "std": [0.25]})";
  const std::vector<Message> normalized = through_cpu_twin("normalize", norm, s.messages);
  for (const std::string params : {R"({"p": 0.7, "value": [9, 200, 37]})", R"({"p": 0.7, "random_value": true})"}) {
    SCOPED_TRACE(params);
    const auto u8_input = batch_of(s.messages);
    const torch::Tensor u8_twin = through_batch_twin("batch_random_erasing", params, u8_input);
    EXPECT_TRUE(u8_twin.equal(batch_of(through_cpu_twin("random_erasing", params, s.messages))->images));
    const auto erased = u8_twin.ne(u8_input->images).flatten(1).any(1).sum().item<int>();
    EXPECT_GT(erased, 8);
    const torch::Tensor f_twin = through_batch_twin("batch_random_erasing", params, batch_of(normalized));
    EXPECT_TRUE(f_twin.equal(batch_of(through_cpu_twin("random_erasing", params, normalized))->images));
  }
}

TEST(BatchTwins, NormalizeRefusesFloatBatches) {
  auto batch = std::make_shared<Batch>();
  batch->images = torch::zeros({2, 3, 4, 4});
  batch->indices = torch::tensor({0, 1}, torch::kLong);
  try {
    through_batch_twin("batch_normalize", "{}", batch);
    FAIL() << "a float batch was normalized again";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("expected uint8"), std::string::npos) << e.what();
  }
}

TEST(ToDevice, PassesTheSameBatchOnAndItsLeaseOnTheCpu) {
  auto stage = make_stage("to_device", "{}", 0, "cpu");
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  auto batch = std::make_shared<Batch>();
  batch->images = torch::zeros({2, 3, 4, 4}, torch::kByte);
  Message m;
  m.payload = batch;
  m.index = 7;
  auto lease = std::make_shared<int>(1);
  m.lease = lease;
  RecordingEmitter out;
  ordered.process(m, out);
  ASSERT_EQ(out.emitted.size(), 1u);
  EXPECT_EQ(out.emitted[0].payload.get(), batch.get());
  EXPECT_EQ(out.emitted[0].lease.get(), lease.get());
  EXPECT_EQ(out.emitted[0].index, 7u);
}

}  // namespace
}  // namespace flowrun::testing
