// The batch stage, called directly: layout (HWC in, NCHW out), labels and indices in
// arrival order, partial batches, drop_last, leases held, and a clear error for
// mixed sizes.
#include <gtest/gtest.h>

#include <set>

#include "stages/messages/batch.hpp"
#include "stages/messages/sample.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

Message make_sample(int h, int w, std::int64_t label, std::uint64_t index, Lease lease = {}) {
  auto s = std::make_shared<ImageSample>();
  s->image = Image::u8_hwc(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) s->image.u8[(y * w + x) * 3 + c] = static_cast<std::uint8_t>(c * 100 + y * w + x);
  s->info = SampleInfo(label, "s" + std::to_string(index));
  Message m;
  m.payload = s;
  m.index = index;
  m.lease = std::move(lease);
  return m;
}

const Batch& batch_at(const RecordingEmitter& out, std::size_t i) {
  return dynamic_cast<const Batch&>(*out.emitted.at(i).payload);
}

TEST(Batch, StacksHwcSamplesIntoNchwWithLabelsAndIndices) {
  auto stage = make_stage("batch", R"({"batch_size": 4})");
  auto& batch = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  for (int i = 0; i < 10; ++i) batch.process(make_sample(2, 3, i % 3, static_cast<std::uint64_t>(100 + i)), out);
  batch.epoch_end(0, 0, out);
  ASSERT_EQ(out.emitted.size(), 3u);  // 4 + 4 + partial 2
  const Batch& first = batch_at(out, 0);
  EXPECT_EQ(first.images.sizes(), (at::IntArrayRef{4, 3, 2, 3}));
  EXPECT_EQ(first.images.dtype(), at::kByte);
  const std::uint8_t* px = first.images.data_ptr<std::uint8_t>();
  // Sample 1, channel 2, row 1, column 2: value c*100 + y*w + x = 205.
  EXPECT_EQ(px[((1 * 3 + 2) * 2 + 1) * 3 + 2], 205);
  EXPECT_EQ(first.labels.data_ptr<std::int64_t>()[3], 0);
  EXPECT_EQ(first.indices.data_ptr<std::int64_t>()[2], 102);
  EXPECT_EQ(first.keys[1], "s101");
  EXPECT_EQ(batch_at(out, 2).images.size(0), 2);
  EXPECT_EQ(batch_at(out, 2).step, 2u);
  EXPECT_EQ(out.emitted[1].index, 1u);
}

TEST(Batch, DropLastAndFloatSamples) {
  auto stage = make_stage("batch", R"({"batch_size": 4, "drop_last": true})");
  auto& batch = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  for (int i = 0; i < 6; ++i) {
    Message m = make_sample(2, 2, 1, static_cast<std::uint64_t>(i));
    auto s = std::make_shared<ImageSample>(m.as<ImageSample>());
    s->image.type = Image::Type::F32_CHW;
    s->image.f32.assign(12, static_cast<float>(i));
    m.payload = s;
    batch.process(std::move(m), out);
  }
  batch.epoch_end(0, 0, out);
  ASSERT_EQ(out.emitted.size(), 1u);
  EXPECT_EQ(batch_at(out, 0).images.dtype(), at::kFloat);
  EXPECT_EQ(batch_at(out, 0).images.data_ptr<float>()[12 * 3], 3.0f);
}

TEST(Batch, NormalizingWhileBatchingEqualsTheNormalizeStage) {
  auto fused = make_stage("batch", R"({"batch_size": 3, "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]})");
  auto plain = make_stage("batch", R"({"batch_size": 3})");
  auto norm = make_stage("normalize", R"({"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]})");
  RecordingEmitter fused_out, plain_out;
  for (int i = 0; i < 3; ++i) {
    Message m = make_sample(4, 5, i, static_cast<std::uint64_t>(i));
    Message normalized = m;
    normalized.payload = dynamic_cast<MapStage&>(*norm).process(m);
    dynamic_cast<OrderedStage&>(*fused).process(m, fused_out);
    dynamic_cast<OrderedStage&>(*plain).process(normalized, plain_out);
  }
  const Batch& a = batch_at(fused_out, 0);
  const Batch& b = batch_at(plain_out, 0);
  ASSERT_EQ(a.images.dtype(), at::kFloat);
  ASSERT_TRUE(a.images.equal(b.images)) << "fused normalization must give the same floats";
  EXPECT_THROW(make_stage("batch", R"({"mean": [0.5]})"), std::invalid_argument);
}

TEST(Batch, HoldsTheSamplesLeasesUntilReleased) {
  auto stage = make_stage("batch", R"({"batch_size": 2})");
  auto& batch = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  auto a = std::make_shared<int>(1), b = std::make_shared<int>(2);
  batch.process(make_sample(1, 1, 0, 0, a), out);
  batch.process(make_sample(1, 1, 0, 1, b), out);
  ASSERT_EQ(out.emitted.size(), 1u);
  std::weak_ptr<int> wa = a, wb = b;
  a.reset();
  b.reset();
  EXPECT_FALSE(wa.expired()) << "the batch must keep its samples' slots";
  out.emitted.clear();
  EXPECT_TRUE(wa.expired());
  EXPECT_TRUE(wb.expired());
}

TEST(Batch, RecyclesBufferMemoryOnlyAfterBatchesAreReleased) {
  auto stage = make_stage("batch", R"({"batch_size": 2})");
  auto& batch = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  for (int i = 0; i < 8; ++i) batch.process(make_sample(1, 1, i, static_cast<std::uint64_t>(i)), out);
  ASSERT_EQ(out.emitted.size(), 4u);
  std::set<const void*> held;
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(held.insert(batch_at(out, i).images.data_ptr()).second) << "a held batch's memory was reused";
    EXPECT_EQ(batch_at(out, i).labels.data_ptr<std::int64_t>()[1], static_cast<std::int64_t>(2 * i + 1));
  }
  out.emitted.clear();  // the consumer lets go of every batch
  batch.process(make_sample(1, 1, 0, 8), out);
  batch.process(make_sample(1, 1, 0, 9), out);
  EXPECT_EQ(held.count(batch_at(out, 0).images.data_ptr()), 1u) << "released memory should be recycled";
}

TEST(Batch, MixedSizesNameTheSample) {
  auto stage = make_stage("batch", R"({"batch_size": 4})");
  auto& batch = dynamic_cast<OrderedStage&>(*stage);
  RecordingEmitter out;
  batch.process(make_sample(2, 2, 0, 0), out);
  try {
    batch.process(make_sample(3, 2, 0, 1), out);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sample s1 is 3x2x3 but this batch holds 2x2x3"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace flowrun::testing
