// CPU augmentations: the deterministic operations match torchvision exactly on the
// fixtures written by tools/make_augment_fixtures.py; the random stages are checked
// statistically and for determinism per item.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "flowrun/errors.hpp"
#include "lib/image/image_ops.hpp"
#include "lib/image/resample.hpp"
#include "stages/augment/color_ops.hpp"
#include "stages/augment/randaugment.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

const char* const kRegenerate = "regenerate with: .venv/bin/python tools/make_augment_fixtures.py";

Image image_from(const nlohmann::json& input) {
  const auto shape = input["shape"].get<std::vector<int>>();
  Image image = Image::u8_hwc(shape[0], shape[1], shape[2]);
  image.u8 = input["pixels"].get<std::vector<std::uint8_t>>();
  return image;
}

RandAugmentOp op_by_name(const std::string& name) {
  for (int i = 0; i < kRandAugmentOps; ++i)
    if (name == randaugment_op_name(static_cast<RandAugmentOp>(i))) return static_cast<RandAugmentOp>(i);
  throw std::invalid_argument("unknown RandAugment op " + name);
}

Image apply(const std::string& op, const nlohmann::json& p, const Image& in) {
  if (op == "pad_crop") {
    const auto pad = p["padding"].get<std::vector<int>>();  // left, top, right, bottom
    const auto fill = static_cast<std::uint8_t>(p["fill"].get<int>());
    return crop_padded(in, p["top"].get<int>() - pad[1], p["left"].get<int>() - pad[0], p["height"], p["width"],
                       parse_pad_mode(p["mode"]), {fill, fill, fill});
  }
  if (op == "center_crop") return center_crop(in, p["size"][0], p["size"][1]);
  if (op == "hflip") return flip_horizontal(in);
  if (op == "randaugment_op") return apply_randaugment_step(in, {op_by_name(p["op"]), p["magnitude"]});
  if (op == "brightness") return adjust_brightness(in, p["factor"]);
  if (op == "contrast") return adjust_contrast(in, p["factor"]);
  if (op == "saturation") return adjust_saturation(in, p["factor"]);
  if (op == "hue") return adjust_hue(in, p["factor"]);
  if (op == "resize") {
    int h = 0, w = 0;
    resized_shape(in.height, in.width, p["size"].get<std::vector<std::int64_t>>(), h, w);
    return resize(in, h, w, parse_interpolation(p["interpolation"]));
  }
  if (op == "resized_crop") {
    const Image cropped = crop_padded(in, p["top"], p["left"], p["height"], p["width"], PadMode::Constant);
    return resize(cropped, p["size"][0], p["size"][1], parse_interpolation(p["interpolation"]));
  }
  if (op == "normalize") return normalize(in, p["mean"].get<std::vector<double>>(), p["std"].get<std::vector<double>>());
  throw std::invalid_argument("unknown fixture op " + op);
}

TEST(AugmentOps, MatchTorchvisionOnItsOwnOutput) {
  const auto doc = nlohmann::json::parse(read_file(source_dir() + "/tests/fixtures/augment_torchvision.json"));
  std::map<std::string, int> checked;
  for (const auto& c : doc["cases"]) {
    const std::string op = c["op"];
    const Image out = apply(op, c["params"], image_from(doc["inputs"][c["input"].get<std::size_t>()]));
    const auto shape = c["output_shape"].get<std::vector<int>>();
    const std::string where = op + " " + c["params"].dump();
    if (c["dtype"] == "f32") {
      ASSERT_EQ(out.type, Image::Type::F32_CHW) << where;
      ASSERT_EQ((std::vector<int>{out.channels, out.height, out.width}), shape) << where;
      const auto expected = c["output"].get<std::vector<double>>();
      for (std::size_t i = 0; i < expected.size(); ++i)
        ASSERT_EQ(out.f32[i], static_cast<float>(expected[i])) << where << " at " << i << "; " << kRegenerate;
    } else {
      ASSERT_EQ((std::vector<int>{out.height, out.width, out.channels}), shape) << where;
      const auto expected = c["output"].get<std::vector<int>>();
      for (std::size_t i = 0; i < expected.size(); ++i)
        ASSERT_LE(std::abs(int(out.u8[i]) - expected[i]), 1) << where << " at " << i << "; " << kRegenerate;
    }
    ++checked[op];
  }
  EXPECT_EQ(checked["pad_crop"], 72);
  EXPECT_EQ(checked["center_crop"], 12);
  EXPECT_EQ(checked["hflip"], 3);
  EXPECT_EQ(checked["normalize"], 3);
  EXPECT_EQ(checked["resize"], 24);
  EXPECT_EQ(checked["resized_crop"], 4);
  EXPECT_EQ(checked["brightness"], 16);
  EXPECT_EQ(checked["hue"], 16);
  EXPECT_EQ(checked["randaugment_op"], 2 * (9 * 2 * 2 + 5 * 2));  // per image: 9 signed ops x 2 bins x 2 signs, 5 others x 2 bins
}

TEST(RandAugment, MagnitudeTableMatchesTorchvision) {
  const auto doc = nlohmann::json::parse(read_file(source_dir() + "/tests/fixtures/augment_torchvision.json"));
  int checked = 0;
  for (const auto& row : doc["randaugment_table"]) {
    const RandAugmentOp op = op_by_name(row["op"]);
    for (std::size_t k = 0; k < row["at"].size(); ++k) {
      const double expected = row["values"][k];
      const double mine = randaugment_magnitude(op, row["at"][k], row["bins"], row["height"], row["width"]);
      EXPECT_EQ(static_cast<float>(mine), static_cast<float>(expected)) << row["op"] << " bin " << row["at"][k];
      ++checked;
    }
  }
  EXPECT_EQ(checked, 2 * 14 * 4);
}

TEST(RandAugment, OperationsAndSignsAreDrawnUniformly) {
  std::vector<int> counts(kRandAugmentOps, 0);
  int negative = 0, signed_ops = 0;
  const int n = 28000;
  for (int i = 0; i < n / 2; ++i) {
    Rng rng = RandomStreams(1, "ra").for_item(0, static_cast<std::uint64_t>(i));
    for (const RandAugmentStep& step : randaugment_plan(2, 9, 31, 32, 32, rng)) {
      ++counts[static_cast<std::size_t>(step.op)];
      if (step.op == RandAugmentOp::Rotate) {
        ++signed_ops;
        negative += step.magnitude < 0;
      }
    }
  }
  for (int c : counts) EXPECT_NEAR(c, n / 14, n / 14 * 0.1);
  EXPECT_NEAR(negative / double(signed_ops), 0.5, 0.05);
}

std::shared_ptr<ImageSample> numbered_image(int h, int w) {
  auto s = std::make_shared<ImageSample>();
  s->image = Image::u8_hwc(h, w, 3);
  for (std::size_t i = 0; i < s->image.u8.size(); ++i) s->image.u8[i] = static_cast<std::uint8_t>(i / 3);
  s->info = SampleInfo(4, "numbered");
  return s;
}

Message item(std::shared_ptr<const Payload> payload, std::uint64_t index, std::uint64_t epoch = 0) {
  Message m;
  m.payload = std::move(payload);
  m.index = index;
  m.epoch = epoch;
  return m;
}

TEST(RandomResizedCrop, AreaAndAspectFollowTorchvisionsDistribution) {
  // On a large image the first attempt nearly always fits: the kept area share is
  // uniform in scale and the log aspect ratio uniform in log(ratio).
  const std::vector<double> scale = {0.2, 0.6}, ratio = {0.75, 4.0 / 3.0};
  const int n = 20000;
  double area_sum = 0, log_ratio_sum = 0, log_ratio_sq = 0;
  int below_mid = 0;
  for (int i = 0; i < n; ++i) {
    Rng rng = RandomStreams(9, "rrc").for_item(0, static_cast<std::uint64_t>(i));
    const CropWindow w = random_resized_crop_window(1000, 1000, scale, ratio, rng);
    ASSERT_GE(w.top, 0);
    ASSERT_LE(w.top + w.height, 1000);
    ASSERT_LE(w.left + w.width, 1000);
    const double share = w.height * w.width / 1e6;
    area_sum += share;
    below_mid += share < 0.4;
    const double lr = std::log(static_cast<double>(w.width) / w.height);
    log_ratio_sum += lr;
    log_ratio_sq += lr * lr;
  }
  EXPECT_NEAR(area_sum / n, 0.4, 0.005);      // mean of U(0.2, 0.6)
  EXPECT_NEAR(below_mid / double(n), 0.5, 0.02);
  const double span = std::log(4.0 / 3.0) - std::log(0.75);
  EXPECT_NEAR(log_ratio_sum / n, 0.0, 0.005);  // symmetric range
  EXPECT_NEAR(log_ratio_sq / n, span * span / 12, 0.003);  // variance of a uniform
  // A thin image forces the fallback: the central crop with the ratio clamped.
  Rng rng(1);
  const CropWindow thin = random_resized_crop_window(10, 1000, {0.9, 1.0}, ratio, rng);
  EXPECT_EQ(thin.height, 10);
  EXPECT_EQ(thin.width, 13);  // round(10 * 4/3)
  EXPECT_EQ(thin.left, (1000 - 13) / 2);
}

TEST(RandomCrop, OffsetsAreUniformAndFixedPerItem) {
  // 10x10 image, padding 2 -> 14x14, crop 10: offsets 0..4 each way, 25 windows.
  auto stage = make_stage("random_crop", R"({"size": [10], "padding": [2]})", 7);
  auto& crop = dynamic_cast<MapStage&>(*stage);
  auto input = numbered_image(10, 10);
  std::map<std::vector<std::uint8_t>, int> windows;  // every offset gives a different picture
  const int n = 25000;
  for (int i = 0; i < n; ++i) {
    const auto out = crop.process(item(input, static_cast<std::uint64_t>(i)));
    const auto& image = dynamic_cast<const ImageSample&>(*out);
    EXPECT_EQ(image.info.label, 4);
    ++windows[image.image.u8];
  }
  EXPECT_EQ(windows.size(), 25u);
  for (const auto& [pixels, count] : windows) EXPECT_NEAR(count, n / 25, n / 25 * 0.15);
  // The same item gives the same window on every call (and so on every thread).
  const auto a = crop.process(item(input, 123, 2)), b = crop.process(item(input, 123, 2));
  EXPECT_EQ(dynamic_cast<const ImageSample&>(*a).image.u8, dynamic_cast<const ImageSample&>(*b).image.u8);
}

TEST(RandomCrop, RefusesImagesSmallerThanTheCropUnlessPaddingIsAllowed) {
  auto strict = make_stage("random_crop", R"({"size": [12]})");
  EXPECT_THROW(dynamic_cast<MapStage&>(*strict).process(item(numbered_image(10, 10), 0)), std::runtime_error);
  auto lenient = make_stage("random_crop", R"({"size": [12], "pad_if_needed": true})");
  const auto out = dynamic_cast<MapStage&>(*lenient).process(item(numbered_image(10, 10), 0));
  EXPECT_EQ(dynamic_cast<const ImageSample&>(*out).image.height, 12);
}

TEST(HorizontalFlip, FlipsAtTheRequestedRate) {
  auto stage = make_stage("horizontal_flip", R"({"p": 0.3})", 3);
  auto& flip = dynamic_cast<MapStage&>(*stage);
  auto input = numbered_image(2, 5);
  int flipped = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const auto out = flip.process(item(input, static_cast<std::uint64_t>(i)));
    flipped += out.get() != input.get();
  }
  EXPECT_NEAR(flipped / double(n), 0.3, 0.015);
}

// The three-channel fast path copies four bytes per pixel; the edges of every row (and of
// the buffer) must still come out right at any width, and for other channel counts.
TEST(HorizontalFlip, MirrorsEveryRowAtAnyWidthAndChannelCount) {
  for (const int channels : {1, 3, 4}) {
    for (const int width : {1, 2, 3, 5, 32}) {
      Image image = Image::u8_hwc(3, width, channels);
      for (std::size_t i = 0; i < image.u8.size(); ++i) image.u8[i] = static_cast<std::uint8_t>(i * 37 + 11);
      const Image flipped = flip_horizontal(image);
      for (int y = 0; y < 3; ++y)
        for (int x = 0; x < width; ++x)
          for (int k = 0; k < channels; ++k)
            ASSERT_EQ(flipped.row(y)[x * channels + k], image.row(y)[(width - 1 - x) * channels + k])
                << "width " << width << ", " << channels << " channels, pixel (" << y << ", " << x << ")";
    }
  }
}

TEST(RandomErasing, ErasesAtRateAndWithinScale) {
  auto stage = make_stage("random_erasing", R"({"p": 0.4, "scale": [0.1, 0.2], "value": [7]})", 11);
  auto& erase = dynamic_cast<MapStage&>(*stage);
  auto input = numbered_image(40, 40);
  for (auto& v : input->image.u8) v = 200;
  int erased = 0;
  double share_sum = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto out = erase.process(item(input, static_cast<std::uint64_t>(i)));
    if (out.get() == input.get()) continue;
    ++erased;
    const auto& px = dynamic_cast<const ImageSample&>(*out).image.u8;
    const auto sevens = std::count(px.begin(), px.end(), 7);
    EXPECT_EQ(sevens % 3, 0);  // whole pixels, every channel
    share_sum += static_cast<double>(sevens) / 3 / 1600;
  }
  EXPECT_NEAR(erased / double(n), 0.4, 0.03);
  const double mean_share = share_sum / erased;
  EXPECT_GT(mean_share, 0.1);
  EXPECT_LT(mean_share, 0.2);
  // Float samples with noise: the window holds normal values, the rest is untouched.
  auto noisy = make_stage("random_erasing", R"({"p": 1, "random_value": true})", 3);
  auto& noisy_erase = dynamic_cast<MapStage&>(*noisy);
  auto norm = make_stage("normalize");
  const auto normalized = dynamic_cast<MapStage&>(*norm).process(item(input, 0));
  const auto out = noisy_erase.process(item(normalized, 5));
  const auto& before = dynamic_cast<const ImageSample&>(*normalized).image.f32;
  const auto& after = dynamic_cast<const ImageSample&>(*out).image.f32;
  std::size_t changed = 0;
  for (std::size_t i = 0; i < before.size(); ++i) changed += before[i] != after[i];
  EXPECT_GT(changed, 0u);
  EXPECT_LT(changed, before.size() / 2);
}

TEST(ColorJitter, BrightnessFactorsAreUniformInTheirRange) {
  // Brightness alone on a flat grey image: the output level is 100 * factor, so the
  // factor's distribution can be read off the pixels.
  auto stage = make_stage("color_jitter", R"({"brightness": [0.5]})", 21);
  auto& jitter = dynamic_cast<MapStage&>(*stage);
  auto input = numbered_image(4, 4);
  for (auto& v : input->image.u8) v = 100;
  const int n = 20000;
  double sum = 0;
  int below_one = 0, lo = 255, hi = 0;
  for (int i = 0; i < n; ++i) {
    const auto out = jitter.process(item(input, static_cast<std::uint64_t>(i)));
    const int level = dynamic_cast<const ImageSample&>(*out).image.u8[0];
    sum += level;
    below_one += level < 100;
    lo = std::min(lo, level);
    hi = std::max(hi, level);
  }
  EXPECT_NEAR(sum / n, 100 * 1.0 - 0.5, 1.0);  // mean factor 1 (truncation takes off half a level)
  EXPECT_NEAR(below_one / double(n), 0.5, 0.02);
  EXPECT_EQ(lo, 50);
  EXPECT_EQ(hi, 149);
}

TEST(ColorJitter, OrderIsRandomPerItem) {
  // Contrast to a flat grey, then brightness, differs from brightness then contrast;
  // both orders must occur.
  auto stage = make_stage("color_jitter", R"({"brightness": [2.0, 2.0], "contrast": [0.0, 0.0]})", 4);
  auto& jitter = dynamic_cast<MapStage&>(*stage);
  auto input = numbered_image(4, 4);
  std::set<int> results;
  for (int i = 0; i < 200; ++i) {
    const auto out = jitter.process(item(input, static_cast<std::uint64_t>(i)));
    results.insert(dynamic_cast<const ImageSample&>(*out).image.u8[0]);
  }
  EXPECT_EQ(results.size(), 2u);
}

TEST(Normalize, RefusesFloatInputAndNonPositiveStd) {
  try {
    make_stage("normalize", R"({"std": [0.2, 0, 0.2]})");
    FAIL();
  } catch (const DescriptionError& e) {
    EXPECT_NE(std::string(e.what()).find("/std/1: expected each value in [1e-06, 100], got 0"), std::string::npos)
        << e.what();
  }
  auto stage = make_stage("normalize");
  const auto once = dynamic_cast<MapStage&>(*stage).process(item(numbered_image(2, 2), 0));
  EXPECT_THROW(dynamic_cast<MapStage&>(*stage).process(item(once, 0)), std::invalid_argument);
}

}  // namespace
}  // namespace flowrun::testing
