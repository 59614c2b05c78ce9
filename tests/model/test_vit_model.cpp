// The ViT module itself: presets have the published parameter counts (timm's, with a
// 1000-class head), shapes flow through, drop path behaves.
#include <gtest/gtest.h>

#include "lib/model/vit.hpp"

namespace flowrun {
namespace {

std::int64_t parameter_count(const VitConfig& c) {
  Vit model(c);
  std::int64_t n = 0;
  for (const auto& p : model->parameters()) n += p.numel();
  return n;
}

TEST(VitModel, PresetsHaveThePublishedParameterCounts) {
  // timm 1.0.31: sum(p.numel() for p in timm.create_model(name).parameters())
  EXPECT_EQ(parameter_count(vit_preset("vit_tiny_patch16_224")), 5717416);
  EXPECT_EQ(parameter_count(vit_preset("vit_small_patch16_224")), 22050664);
  EXPECT_EQ(parameter_count(vit_preset("vit_base_patch16_224")), 86567656);
  EXPECT_EQ(parameter_count(vit_preset("vit_small_patch32_224")), 22878952);
  EXPECT_EQ(parameter_count(vit_preset("vit_tiny_patch4_32")), 5553832);
  VitConfig micro = vit_preset("vit_cifar_micro");
  micro.num_classes = 10;
  EXPECT_EQ(parameter_count(micro), 811146);
  EXPECT_THROW(vit_preset("vit_huge"), std::invalid_argument);
}

TEST(VitModel, InconsistentShapesAreRefusedByName) {
  VitConfig c = vit_preset("vit_cifar_micro");
  c.image_size = 30;
  try {
    c.check();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "ViT config: image_size 30 is not a multiple of patch_size 4");
  }
  c = vit_preset("vit_cifar_micro");
  c.heads = 3;
  EXPECT_THROW(c.check(), std::invalid_argument);
}

TEST(VitModel, ForwardShapesForBothPoolingsAndFeatures) {
  VitConfig c = vit_preset("vit_cifar_micro");
  c.num_classes = 7;
  for (VitPool pool : {VitPool::Cls, VitPool::Mean}) {
    c.pool = pool;
    Vit model(c);
    EXPECT_EQ(model->forward(torch::randn({3, 3, 32, 32})).sizes(), (std::vector<int64_t>{3, 7}));
    EXPECT_EQ(model->features(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 128}));
  }
  c.num_classes = 0;
  Vit headless(c);
  EXPECT_EQ(headless->forward(torch::randn({1, 3, 32, 32})).sizes(), (std::vector<int64_t>{1, 128}));
}

TEST(VitModel, DropPathKeepsTheExpectationAndIsOffInEval) {
  torch::manual_seed(0);
  torch::Tensor x = torch::ones({20000, 4, 8});
  torch::Tensor y = drop_path(x, 0.25, /*training=*/true);
  const auto kept = y.select(1, 0).select(1, 0).ne(0).to(torch::kFloat).mean().item<double>();
  EXPECT_NEAR(kept, 0.75, 0.02);
  EXPECT_NEAR(y.mean().item<double>(), 1.0, 0.03) << "kept samples are scaled by 1 / (1 - p)";
  // Whole samples are dropped: every value of a sample is 0 or 1/(1-p) alike.
  EXPECT_TRUE(torch::equal(y.amin({1, 2}), y.amax({1, 2})));
  EXPECT_TRUE(torch::equal(drop_path(x, 0.25, /*training=*/false), x));
}

}  // namespace
}  // namespace flowrun
