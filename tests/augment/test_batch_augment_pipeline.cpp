// Batch augmentation in real pipelines on the CIFAR-10 JPEGs: the ViT-B/16 input path
// with batch twins on uint8 32-px batches gives the CPU chain's batches (same node
// ids, same draws; one grey level apart at most after resampling); Mixup/CutMix is
// thread-independent; the quickstart's Mixup/CutMix ablation is one --set; and mistakes
// in a chain (a mix stage on an evaluation chain, uint8 batches nobody normalizes) are
// refused by validation, with their locations.
#include <gtest/gtest.h>

#include <iostream>
#include <torch/torch.h>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "stages/messages/batch.hpp"
#include "support/test_util.hpp"
#include "support/toy_stages.hpp"

namespace flowrun::testing {
namespace {

std::string cifar_tar() { return source_dir() + "/../shared/data/cifar10-jpeg.tar"; }

std::string source_node(const std::string& id, const std::string& prefix, int per_class) {
  return R"({"id": ")" + id + R"(", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": ")" + prefix +
         R"(", "per_class_limit": )" + std::to_string(per_class) + "}}";
}

std::string description(const std::string& nodes, const std::string& edges) {
  return R"({"name": "batch_augment", "seed": 11, "device": "cpu", "prefetch": 256, "nodes": [)" + nodes + R"(], "edges": [)" +
         edges + "]}";
}

std::vector<std::shared_ptr<const Payload>> run_and_keep(const std::string& json, const std::vector<std::string>& overrides = {}) {
  Pipeline p(describe(json, overrides));
  p.run();
  return kept_batches(*p.stage("keep"));
}

const Batch& as_batch(const std::shared_ptr<const Payload>& p) { return dynamic_cast<const Batch&>(*p); }

TEST(BatchAugmentPipeline, Vit224InputPathWithBatchTwinsMatchesTheCpuChain) {
  const std::string common = source_node("data", "train/", 4) + R"(, {"id": "decode", "plugin": "jpeg_decode"},
      {"id": "flip", "plugin": "horizontal_flip"}, {"id": "keep", "plugin": "test.keep_batches"})";
  const std::string crop = R"("params": {"size": [224], "scale": [0.5, 1.0]})";
  const std::string norm = R"("params": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]})";
  const auto cpu = run_and_keep(description(
      common + R"(, {"id": "crop", "plugin": "random_resized_crop", )" + crop + R"(},
          {"id": "norm", "plugin": "normalize", )" + norm + R"(}, {"id": "batch", "plugin": "batch", "params": {"batch_size": 16}})",
      R"("data -> decode -> flip -> crop -> norm -> batch -> keep")"));
  const auto twins = run_and_keep(description(
      common + R"(, {"id": "batch", "plugin": "batch", "params": {"batch_size": 16}}, {"id": "to_device", "plugin": "to_device"},
          {"id": "crop", "plugin": "batch_random_resized_crop", )" + crop + R"(}, {"id": "norm", "plugin": "batch_normalize", )" + norm + "}",
      R"("data -> decode -> flip -> batch -> to_device -> crop -> norm -> keep")"));
  ASSERT_EQ(cpu.size(), 3u);  // 40 images: 16 + 16 + 8
  ASSERT_EQ(twins.size(), cpu.size());
  double worst = 0, equal = 0, two_levels = 0, total = 0;
  const double level = 1.0 / 255 / 0.5;  // one grey level after normalization with std 0.5
  for (std::size_t b = 0; b < cpu.size(); ++b) {
    const Batch &x = as_batch(cpu[b]), &y = as_batch(twins[b]);
    ASSERT_EQ(y.images.sizes(), x.images.sizes());
    ASSERT_EQ(y.images.scalar_type(), torch::kFloat);
    EXPECT_TRUE(y.indices.equal(x.indices));
    EXPECT_TRUE(y.labels.equal(x.labels));
    const torch::Tensor d = (y.images - x.images).abs();
    worst = std::max(worst, d.max().item<double>());
    equal += d.eq(0).sum().item<double>();
    two_levels += d.gt(1.5 * level).sum().item<double>();
    total += static_cast<double>(d.numel());
  }
  // Both chains resample in two passes that round to uint8: Pillow's 22-bit fixed point
  // in the CPU twin, ATen's uint8 kernel (the same fixed-point scheme) in the batch stage
  // on the CPU. Measured on these 40 images: 99.9% identical, none more than one level
  // apart. (CUDA's float32 passes, measured here on the CPU before the uint8 kernel
  // took over: 99.1% identical, 4 of 6.0 million values two levels apart.)
  std::cout << "twins: " << 100 * equal / total << "% identical, " << two_levels << " of " << total
            << " values two levels apart, largest gap " << worst / level << " levels\n";
  EXPECT_LE(worst, level + 1e-6) << "more than one grey level apart";
  EXPECT_EQ(two_levels, 0);
  EXPECT_GT(equal / total, 0.99);
}

const char* const kMixNodes = R"(, {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 10}},
    {"id": "mix", "plugin": "mixup_cutmix", "params": {"mode": "elem"}},
    {"id": "keep", "plugin": "test.keep_batches"})";

TEST(BatchAugmentPipeline, MixupCutmixGivesTheSameBatchesWithOneOrTwoThreads) {
  const std::string json = description(source_node("data", "train/", 3) + kMixNodes, R"("data -> decode -> batch -> mix -> keep")");
  const auto one = run_and_keep(json, {"threads=1"});
  const auto two = run_and_keep(json, {"threads=2"});
  const auto other_seed = run_and_keep(json, {"threads=2", "seed=12"});
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(two.size(), one.size());
  bool differs = false;
  for (std::size_t b = 0; b < one.size(); ++b) {
    const Batch &x = as_batch(one[b]), &y = as_batch(two[b]);
    ASSERT_TRUE(x.targets.defined());
    EXPECT_EQ(x.targets.sizes(), (torch::IntArrayRef{10, 10}));
    EXPECT_TRUE(x.images.equal(y.images));
    EXPECT_TRUE(x.targets.equal(y.targets));
    EXPECT_TRUE(torch::allclose(x.targets.sum(1), torch::ones({10}))) << "soft targets sum to one";
    differs = differs || !x.targets.equal(as_batch(other_seed[b]).targets);
  }
  EXPECT_TRUE(differs) << "the mix draws do not depend on the seed";
}

// Refused before anything runs: validation asks each plugin to check its node against
// its neighbours, and reports each mistake at its JSON location.
std::string validation_problems(const std::string& json) {
  try {
    describe(json);
  } catch (const DescriptionError& e) {
    return e.what();
  }
  return "";
}

TEST(BatchAugmentPipeline, ChainMistakesAreCaughtByValidationWithTheirLocations) {
  const std::string nodes = source_node("data", "train/", 2) + R"(, {"id": "decode", "plugin": "jpeg_decode"},
      {"id": "batch", "plugin": "batch", "params": {"batch_size": 10}},
      {"id": "mix", "plugin": "mixup_cutmix", "params": {"cutmix_minmax": [0.4]}},)" +
                            source_node("test_data", "test/", 2) + R"(, {"id": "test_decode", "plugin": "jpeg_decode"},
      {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 10, "mean": [0.5], "std": [0.25]}},
      {"id": "test_norm", "plugin": "batch_normalize"},
      {"id": "test_mix", "plugin": "mixup"},
      {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 32, "depth": 1, "heads": 1}},
      {"id": "eval", "plugin": "evaluate"})";
  const std::string edges = R"("data -> decode -> batch -> mix -> train.train",
      "test_data -> test_decode -> test_batch -> test_norm -> test_mix -> eval.batch", "train.model -> eval.model")";
  const std::string found = validation_problems(description(nodes, edges));
  for (const char* expected : {
           "/nodes/3/params/cutmix_minmax: expected [] or [low, high] with low < high",
           "/nodes/7: its batches are normalized already, by node 'test_batch' (batch)",
           "/nodes/9/params/mean: batches reach input 'train' as uint8 from node 'batch' and nothing normalizes them",
           "/nodes/10: input 'batch' gets batches mixed by node 'test_mix' (mixup): evaluation scores the labels of "
           "unmixed images; move the mix stage to the training chain"})
    EXPECT_NE(found.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << found;
  // Low > high in a range is a parameter problem, found before the graph is looked at.
  const std::string crop = validation_problems(description(
      source_node("data", "train/", 2) + R"(, {"id": "decode", "plugin": "jpeg_decode"},
          {"id": "crop", "plugin": "batch_random_resized_crop", "params": {"size": [32], "scale": [0.9, 0.5]}},
          {"id": "batch", "plugin": "batch"}, {"id": "keep", "plugin": "test.keep_batches"})",
      R"("data -> decode -> batch -> crop -> keep")"));
  EXPECT_NE(crop.find("/nodes/2/params/scale: expected ascending values ([low, high] with low <= high)"), std::string::npos)
      << crop;
}

TEST(BatchAugmentPipeline, QuickstartMixupCutmixAblationIsOneSet) {
  TempDir dir;
  const std::string tar = "[\"" + cifar_tar() + "\"]";
  auto r = run_flowrun({source_dir() + "/pipelines/quickstart.json", "--run-dir", dir.path() + "/run",
                        "--set", "nodes.mix.plugin=mixup_cutmix",
                        "--set", "nodes.train_data.params.per_class_limit=26", "--set", "nodes.train_data.params.epochs=2",
                        "--set", "nodes.test_data.params.per_class_limit=10", "--set", "nodes.test_data.params.epochs=2",
                        "--set", "nodes.train.params.log_every=1", "--set", "nodes.train_data.params.paths=" + tar,
                        "--set", "nodes.test_data.params.paths=" + tar},
                       -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string log = r.out + r.err;
  EXPECT_NE(log.find("batches carry soft targets (Mixup/CutMix)"), std::string::npos) << log;
  EXPECT_NE(log.find("[eval] eval after epoch 1: loss "), std::string::npos) << log;
  EXPECT_NE(log.find(" on 100 eval samples after 2 evaluation(s), 4 optimizer steps"), std::string::npos) << log;
}

}  // namespace
}  // namespace flowrun::testing
