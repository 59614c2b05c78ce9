// Mixup and CutMix: the arithmetic against timm 1.0.31 with timm's own draws injected
// (fixtures written by tools/make_mix_fixtures.py: images, soft targets, boxes to the
// pixel and the corrected lam), then the stages' own draws: lam ~ Beta(alpha, alpha),
// the mixing and switch rates, and reproducibility from (seed, node, epoch, step).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "stages/batch_augment/mix_ops.hpp"
#include "stages/messages/batch.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

const char* const kRegenerate = "regenerate with: .venv/bin/python tools/make_mix_fixtures.py";

torch::Tensor tensor_of(const nlohmann::json& values, const std::vector<std::int64_t>& shape, bool u8) {
  if (u8) return torch::tensor(values.get<std::vector<std::int64_t>>()).to(torch::kByte).reshape(shape);
  return torch::tensor(values.get<std::vector<double>>()).to(torch::kFloat).reshape(shape);
}

TEST(MixGolden, MatchesTimmWithItsDrawsInjected) {
  const auto doc = nlohmann::json::parse(read_file(source_dir() + "/tests/fixtures/mix_timm.json"));
  ASSERT_EQ(doc["timm"], "1.0.31") << kRegenerate;
  int cutmix_boxes = 0;
  for (const auto& c : doc["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto shape = c["shape"].get<std::vector<std::int64_t>>();
    const std::int64_t n = shape[0], h = shape[2], w = shape[3];
    const bool u8 = c["dtype"] == "u8";
    const std::string mode = c["mode"];
    const auto minmax = c["cutmix_minmax"].get<std::vector<double>>();
    const bool correct = c["correct_lam"];
    const torch::Tensor images = tensor_of(c["images"], shape, u8);
    const torch::Tensor labels = torch::tensor(c["labels"].get<std::vector<std::int64_t>>());
    const auto lams = c["draws"]["lam"].get<std::vector<double>>();
    const auto cuts = c["draws"]["cutmix"].get<std::vector<bool>>();
    std::size_t next_box = 0;
    // One of timm's draws, made into what happens to a sample (or the batch).
    const auto mix_of = [&](double lam, bool cut, bool float32_lam) {
      SampleMix m;
      if (lam == 1.0) return m;
      m.lam = lam;
      m.cutmix = cut;
      if (!cut) return m;
      const auto& b = c["boxes"].at(next_box++);
      const auto draws = b["draws"].get<std::vector<std::int64_t>>();
      if (minmax.empty()) {
        m.box = centred_box(h, w, lam, draws.at(0), draws.at(1), float32_lam);
      } else {
        const IntRange rh = minmax_cut_range(h, minmax[0], minmax[1]), rw = minmax_cut_range(w, minmax[0], minmax[1]);
        EXPECT_GE(draws.at(0), rh.lo);
        EXPECT_LT(draws.at(0), rh.hi);
        EXPECT_GE(draws.at(1), rw.lo);
        EXPECT_LT(draws.at(1), rw.hi);
        m.box = corner_box(draws.at(0), draws.at(1), draws.at(2), draws.at(3));
      }
      const auto expected = b["box"].get<std::vector<std::int64_t>>();  // timm's (yl, yh, xl, xh)
      EXPECT_EQ(m.box, (CutBox{expected[0], expected[1], expected[2], expected[3]}));
      if (correct || !minmax.empty()) m.lam = box_lam(m.box, h, w);
      if (float32_lam) m.lam = static_cast<float>(m.lam);
      EXPECT_NEAR(m.lam, b["lam_out"].get<double>(), 1e-7);
      ++cutmix_boxes;
      return m;
    };
    std::vector<SampleMix> mixes;
    if (mode == "batch") {
      mixes.push_back(mix_of(lams.at(0), cuts.at(0), false));
    } else {
      mixes.resize(static_cast<std::size_t>(n));
      const std::size_t draws = mode == "pair" ? static_cast<std::size_t>(n / 2) : static_cast<std::size_t>(n);
      ASSERT_EQ(lams.size(), draws);
      for (std::size_t i = 0; i < draws; ++i) {
        mixes[i] = mix_of(lams[i], cuts[i], true);
        if (mode == "pair") mixes[static_cast<std::size_t>(n) - 1 - i] = mixes[i];
      }
    }
    EXPECT_EQ(next_box, c["boxes"].size()) << "timm drew a box this replay did not use";
    const MixedBatch out = apply_mix(images, labels, mixes, c["num_classes"], c["label_smoothing"]);
    const torch::Tensor expected_images = tensor_of(c["out_images"], shape, u8);
    const torch::Tensor expected_targets =
        torch::tensor(c["out_targets"].get<std::vector<double>>()).to(torch::kFloat).reshape({n, c["num_classes"].get<std::int64_t>()});
    ASSERT_EQ(out.images.scalar_type(), images.scalar_type());
    if (u8) {
      EXPECT_TRUE(out.images.equal(expected_images)) << "uint8 pixels differ: max "
                                                     << (out.images.to(torch::kInt) - expected_images.to(torch::kInt)).abs().max().item<int>();
    } else {
      EXPECT_LT((out.images - expected_images).abs().max().item<double>(), 1e-6) << kRegenerate;
    }
    EXPECT_LT((out.targets - expected_targets).abs().max().item<double>(), 1e-6) << kRegenerate;
  }
  EXPECT_GT(cutmix_boxes, 40) << "the fixtures should exercise many CutMix boxes";
}

// Batches of two images, sample 0 all zeros and sample 1 all ones, labels 0 and 1:
// Mixup makes every pixel of sample 0 equal to 1 - lam, CutMix makes pixels 0 or 1,
// an unmixed batch keeps sample 0 at 0; with no smoothing sample 0's target is
// [lam, 1 - lam].
struct Observed {
  std::vector<double> all_lams;  // sample 0's target for its own label, every batch
  std::vector<double> mixup_lams, cutmix_lams;
  int unmixed = 0;
};

Observed run_mix_stage(const std::string& plugin, const std::string& params, int batches, std::uint64_t seed = 0) {
  auto stage = make_stage(plugin, params, seed);
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  Observed seen;
  for (int step = 0; step < batches; ++step) {
    auto batch = std::make_shared<Batch>();
    batch->images = torch::stack({torch::zeros({1, 8, 8}), torch::ones({1, 8, 8})});
    batch->labels = torch::tensor({0, 1}, torch::kLong);
    batch->indices = torch::tensor({0, 1}, torch::kLong);
    batch->step = static_cast<std::uint64_t>(step);
    batch->dataset = std::make_shared<DatasetInfo>(DatasetInfo{"data", {"zeros", "ones"}, 2, 1});
    Message m;
    m.payload = batch;
    m.index = batch->step;
    RecordingEmitter out;
    ordered.process(m, out);
    const auto& mixed = dynamic_cast<const Batch&>(*out.emitted.at(0).payload);
    const torch::Tensor first = mixed.images[0];
    const double lam = mixed.targets[0][0].item<double>();
    const bool blended = first.gt(0).logical_and(first.lt(1)).any().item<bool>();
    seen.all_lams.push_back(lam);
    if (lam == 1.0 && first.eq(0).all().item<bool>()) ++seen.unmixed;
    else if (blended) seen.mixup_lams.push_back(lam);
    else seen.cutmix_lams.push_back(lam);
  }
  return seen;
}

double ks_uniform(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  double d = 0;
  const double n = static_cast<double>(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) d = std::max({d, std::abs(x[i] - i / n), std::abs((i + 1) / n - x[i])});
  return d;
}

TEST(MixStage, MixingAndSwitchRatesAndLamFollowTheParameters) {
  const int batches = 3000;
  const Observed seen = run_mix_stage(
      "mixup_cutmix", R"({"mixup_alpha": 1.0, "cutmix_alpha": 1.0, "prob": 0.7, "switch_prob": 0.3, "label_smoothing": 0})",
      batches);
  const double sd_unmixed = std::sqrt(0.3 * 0.7 / batches);
  EXPECT_NEAR(seen.unmixed / static_cast<double>(batches), 0.3, 4 * sd_unmixed);
  const double mixed = static_cast<double>(seen.mixup_lams.size() + seen.cutmix_lams.size());
  EXPECT_NEAR(seen.cutmix_lams.size() / mixed, 0.3, 4 * std::sqrt(0.21 / mixed));
  // Beta(1, 1) is uniform: a KS test at the 0.1% level on Mixup's lam.
  EXPECT_LT(ks_uniform(seen.mixup_lams), 1.95 / std::sqrt(static_cast<double>(seen.mixup_lams.size())));
  // CutMix's lam is the pixel share kept, a multiple of 1/64 here, in [0, 1].
  for (double lam : seen.cutmix_lams) {
    EXPECT_NEAR(lam * 64, std::round(lam * 64), 1e-4);
    EXPECT_GE(lam, 0.0);
    EXPECT_LE(lam, 1.0);
  }
}

TEST(MixStage, MixupLamIsBetaAlphaAlpha) {
  // Beta(0.2, 0.2): mean 1/2, variance 1 / (4 * 1.4); mass piles up near 0 and 1.
  // (Some lams are so close to 0 or 1 that the blended pixels round to 0 or 1: all
  // batches are Mixup batches here, so every lam counts.)
  const Observed seen = run_mix_stage("mixup", R"({"alpha": 0.2, "label_smoothing": 0})", 4000);
  double sum = 0, sum_sq = 0;
  int extreme = 0;
  for (double lam : seen.all_lams) {
    sum += lam;
    sum_sq += lam * lam;
    extreme += lam < 0.1 || lam > 0.9;
  }
  const double n = static_cast<double>(seen.all_lams.size()), mean = sum / n;
  EXPECT_NEAR(mean, 0.5, 0.03);
  EXPECT_NEAR(sum_sq / n - mean * mean, 1.0 / 5.6, 0.015);
  EXPECT_GT(extreme / n, 0.5);  // P(lam < 0.1 or > 0.9) is about 0.61 for Beta(0.2, 0.2)
}

TEST(MixStage, SameSeedSameMixesOtherSeedOthers) {
  const std::string params = R"({"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "label_smoothing": 0})";
  const Observed a = run_mix_stage("mixup_cutmix", params, 50, 1), b = run_mix_stage("mixup_cutmix", params, 50, 1),
                 c = run_mix_stage("mixup_cutmix", params, 50, 2);
  EXPECT_EQ(a.mixup_lams, b.mixup_lams);
  EXPECT_EQ(a.cutmix_lams, b.cutmix_lams);
  EXPECT_NE(a.mixup_lams, c.mixup_lams);
}

TEST(MixStage, TargetsAreSmoothedOneHotWhenNotMixedAndRefuseASecondMix) {
  auto stage = make_stage("cutmix", R"({"prob": 0, "label_smoothing": 0.1, "num_classes": 4})");
  auto& ordered = dynamic_cast<OrderedStage&>(*stage);
  auto batch = std::make_shared<Batch>();
  batch->images = torch::zeros({2, 3, 4, 4}, torch::kByte);
  batch->labels = torch::tensor({3, 1}, torch::kLong);
  batch->indices = torch::tensor({0, 1}, torch::kLong);
  Message m;
  m.payload = batch;
  RecordingEmitter out;
  ordered.process(m, out);
  const auto& first = dynamic_cast<const Batch&>(*out.emitted.at(0).payload);
  const torch::Tensor expected = torch::tensor({0.025f, 0.025f, 0.025f, 0.925f, 0.025f, 0.925f, 0.025f, 0.025f}).reshape({2, 4});
  EXPECT_TRUE(torch::allclose(first.targets, expected));
  EXPECT_TRUE(first.images.equal(batch->images));
  Message again;
  again.payload = out.emitted[0].payload;
  try {
    ordered.process(again, out);
    FAIL() << "a batch with soft targets was mixed again";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("already has soft targets"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flowrun::testing
