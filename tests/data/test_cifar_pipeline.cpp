// End to end on the real CIFAR-10 JPEGs (../shared/data/cifar10-jpeg.tar): the data
// path as a description runs it, the same batches with 1, 2 or 8 threads, and the
// corrupt-file policies on a tar that mixes real images with a broken one.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "stages/core/collect.hpp"
#include "support/test_util.hpp"
#include "support/toy_stages.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

std::string cifar_tar() {
  const std::string path = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  if (!fs::exists(path)) ADD_FAILURE() << "the shared CIFAR-10 tar is missing: " << path;
  return path;
}

std::string loader_json(const std::string& tar, const std::string& extra_source_params = "") {
  return R"({"name": "cifar", "seed": 3, "prefetch": 512, "nodes": [
    {"id": "src", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "test/",
        "per_class_limit": 50, "epochs": 2)" + extra_source_params + R"(}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "crop", "plugin": "random_crop", "params": {"size": [32], "padding": [4], "padding_mode": "reflect"}},
    {"id": "flip", "plugin": "horizontal_flip"},
    {"id": "norm", "plugin": "normalize", "params": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.243, 0.261]}},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 64}},
    {"id": "sink", "plugin": "test.batch_fingerprints"}],
    "edges": ["src -> decode -> crop -> flip -> norm -> batch -> sink"]})";
}

std::vector<BatchRecord> run_loader(const std::vector<std::string>& sets) {
  Pipeline pipeline(describe(loader_json(cifar_tar()), sets));
  pipeline.run();
  return batch_records(*pipeline.stage("sink"));
}

TEST(CifarPipeline, BatchesAreCompleteBalancedAndNormalized) {
  const auto batches = run_loader({});
  ASSERT_EQ(batches.size(), 16u);  // per epoch: 500 samples = 7 x 64 + 52
  std::map<std::int64_t, int> per_label;
  std::set<std::int64_t> epoch0_indices;
  for (const auto& b : batches) {
    EXPECT_EQ(b.dtype, "float");
    for (auto label : b.labels) ++per_label[label];
    if (b.epoch == 0) {
      for (auto i : b.indices) EXPECT_TRUE(epoch0_indices.insert(i).second) << "index " << i << " twice in epoch 0";
    }
    // Normalized CIFAR pixels average near zero.
    EXPECT_LT(std::abs(b.pixel_sum / (b.size * 3 * 32 * 32)), 0.6);
  }
  EXPECT_EQ(batches[7].size, 52);
  EXPECT_EQ(epoch0_indices.size(), 500u);
  ASSERT_EQ(per_label.size(), 10u);
  for (const auto& [label, count] : per_label) EXPECT_EQ(count, 100) << "label " << label;  // 50 x 2 epochs
  // Keys and labels agree: the class folder of each key is the label's class.
  const std::vector<std::string> classes = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"};
  for (std::size_t i = 0; i < batches[0].keys.size(); ++i) {
    EXPECT_EQ(batches[0].keys[i].substr(5, classes[batches[0].labels[i]].size() + 1),
              classes[batches[0].labels[i]] + "/");
  }
}

TEST(CifarPipeline, SameBatchesWithOneTwoOrEightThreads) {
  const auto one = run_loader({"threads=1"});
  EXPECT_EQ(one, run_loader({"threads=2"}));
  EXPECT_EQ(one, run_loader({"threads=8"}));
  EXPECT_NE(one, run_loader({"threads=2", "seed=4"}));
}

class CorruptFile : public ::testing::Test {
 protected:
  void SetUp() override {
    // Real JPEGs from three classes, and one broken file among them.
    const std::string members = "test/airplane/0000.jpg test/airplane/0001.jpg test/bird/0000.jpg "
                                "test/bird/0001.jpg test/cat/0000.jpg test/cat/0001.jpg";
    ASSERT_EQ(std::system(("tar -xf " + cifar_tar() + " -C " + dir_.path() + " " + members).c_str()), 0);
    dir_.write("test/bird/0002.jpg", "\xFF\xD8\xFF this is not really a JPEG");
    tar_ = dir_.path() + "/mixed.tar";
    ASSERT_EQ(std::system(("cd " + dir_.path() + " && tar -cf " + tar_ + " test").c_str()), 0);
  }
  std::string json(const std::string& on_error) const {
    return R"({"name": "corrupt", "nodes": [
      {"id": "src", "plugin": "tar", "params": {"paths": [")" + tar_ + R"("], "prefix": "test/", "shuffle": false}},
      {"id": "decode", "plugin": "jpeg_decode", "params": {"on_error": ")" + on_error + R"("}},
      {"id": "sink", "plugin": "collect"}], "edges": ["src -> decode -> sink"]})";
  }
  TempDir dir_;
  std::string tar_;
};

TEST_F(CorruptFile, SkipPolicyDropsOnlyTheBrokenFileAndKeepsLabels) {
  Pipeline pipeline(describe(json("skip")));
  pipeline.run();
  std::vector<std::string> seen;
  for (const auto& item : dynamic_cast<Collect&>(*pipeline.stage("sink")).items()) {
    if (item.signal != "data") continue;
    seen.push_back(item.payload);
  }
  ASSERT_EQ(seen.size(), 6u);
  for (const std::string& s : seen) {
    EXPECT_EQ(s.find("bird/0002"), std::string::npos) << "the broken file came through: " << s;
    const int label = s.find("airplane") != std::string::npos ? 0 : s.find("bird") != std::string::npos ? 1 : 2;
    EXPECT_NE(s.find("label " + std::to_string(label)), std::string::npos) << s;
  }
}

TEST_F(CorruptFile, FailPolicyNamesTheFile) {
  Pipeline pipeline(describe(json("fail")));
  try {
    pipeline.run();
    FAIL();
  } catch (const NodeError& e) {
    EXPECT_EQ(e.node_id(), "decode");
    EXPECT_NE(std::string(e.what()).find("cannot decode test/bird/0002.jpg"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flowrun::testing
