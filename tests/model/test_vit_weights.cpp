// The ViT against the real libraries: tiny random models written by transformers and
// timm (tests/fixtures/vit, tools/make_vit_fixtures.py) load under both name layouts
// and give the libraries' logits; exports load back, and in transformers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lib/model/weights.hpp"
#include "model/vit_test_util.hpp"

namespace flowrun::testing {
namespace {

constexpr double kTolerance = 1e-4;

torch::Tensor logits_of(Vit& model) {
  model->eval();
  torch::NoGradGuard no_grad;
  return model->forward(expected_tensor("input"));
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  const double diff = (got - want).abs().max().item<double>();
  EXPECT_LT(diff, kTolerance) << "max abs difference " << diff;
  EXPECT_GT(want.abs().max().item<double>(), 0.1) << "fixture logits too small to tell models apart";
}

TEST(VitWeights, TimmClsTokenModelMatchesTimmLogits) {
  Vit model(fixture_config(5, VitPool::Cls, 1e-6));
  LoadReport r = load_vit_weights(model, vit_fixture("timm_token.safetensors"));
  EXPECT_EQ(r.layout, WeightLayout::Timm);
  EXPECT_TRUE(r.missing.empty() && r.unexpected.empty() && r.mismatched.empty());
  expect_close(logits_of(model), expected_tensor("timm_token"));
}

TEST(VitWeights, TimmMeanPoolingModelMatchesTimmLogits) {
  Vit model(fixture_config(5, VitPool::Mean, 1e-6));
  load_vit_weights(model, vit_fixture("timm_avg.safetensors"));
  expect_close(logits_of(model), expected_tensor("timm_avg"));
}

TEST(VitWeights, HuggingFaceClassifierMatchesTransformersLogits) {
  Vit model(fixture_config(5, VitPool::Cls, 1e-12));
  LoadReport r = load_vit_weights(model, vit_fixture("hf_classifier/model.safetensors"));
  EXPECT_EQ(r.layout, WeightLayout::HuggingFace);
  EXPECT_EQ(r.head, "loaded (5 classes)");
  expect_close(logits_of(model), expected_tensor("hf_classifier"));
}

TEST(VitWeights, HuggingFaceViTModelGivesItsFeaturesAndAFreshHead) {
  Vit model(fixture_config(0, VitPool::Cls, 1e-12));
  LoadReport r = load_vit_weights(model, vit_fixture("hf_model/model.safetensors"));
  ASSERT_EQ(r.ignored.size(), 2u) << "the pooler's weight and bias";
  expect_close(logits_of(model), expected_tensor("hf_model_features"));

  Vit classifier(fixture_config(10, VitPool::Cls, 1e-12));
  r = load_vit_weights(classifier, vit_fixture("hf_model/model.safetensors"));
  EXPECT_NE(r.head.find("fresh"), std::string::npos) << r.head;
  EXPECT_EQ(classifier->head->weight.abs().sum().item<double>(), 0.0);
}

TEST(VitWeights, HeadOfAnotherClassCountIsReplaced) {
  Vit model(fixture_config(10, VitPool::Cls, 1e-6));
  LoadReport r = load_vit_weights(model, vit_fixture("timm_token.safetensors"));
  EXPECT_NE(r.head.find("replaced: file has 5 classes, model 10"), std::string::npos) << r.head;
  EXPECT_EQ(model->head->weight.size(0), 10);
}

TEST(VitWeights, MissingAndMisshapenTensorsFailWithTheWholeReport) {
  Vit deeper(fixture_config(5, VitPool::Cls, 1e-6));
  VitConfig c = fixture_config(5, VitPool::Cls, 1e-6);
  c.depth = 3;
  Vit model(c);
  try {
    load_vit_weights(model, vit_fixture("timm_token.safetensors"));
    FAIL() << "a block missing from the file must fail the load";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("missing (model has, file lacks): blocks.2.attn.qkv.weight"), std::string::npos) << what;
  }
  LoadOptions allow;
  allow.allow_missing = {"blocks.2."};
  EXPECT_NO_THROW(load_vit_weights(model, vit_fixture("timm_token.safetensors"), allow));

  c = fixture_config(5, VitPool::Cls, 1e-6);
  c.width = 64;
  c.heads = 4;
  Vit wider(c);
  try {
    load_vit_weights(wider, vit_fixture("timm_token.safetensors"));
    FAIL() << "a width mismatch must fail the load";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shape mismatch: cls_token: file (1, 1, 32) vs model (1, 1, 64)"),
              std::string::npos) << e.what();
  }
}

TEST(VitWeights, HalfAndBfloat16FilesLoadAsTheirFloatValues) {
  auto tensors = read_as_timm(vit_fixture("timm_token.safetensors"));
  for (DType dtype : {DType::F16, DType::BF16}) {
    TempDir dir;
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> out;
    for (auto& [name, t] : tensors) {
      keep.push_back(t.to(dtype == DType::F16 ? torch::kHalf : torch::kBFloat16).contiguous());
      out.push_back({name, dtype, keep.back().sizes().vec(), keep.back().data_ptr()});
    }
    write_safetensors(dir.path() + "/w.safetensors", out);
    Vit model(fixture_config(5, VitPool::Cls, 1e-6));
    load_vit_weights(model, dir.path() + "/w.safetensors");
    // The loaded parameters are exactly the rounded values, widened.
    auto params = model->named_parameters();
    for (std::size_t i = 0; i < tensors.size(); ++i)
      EXPECT_TRUE(torch::equal(params[tensors[i].first], keep[i].to(torch::kFloat))) << tensors[i].first;
  }
}

TEST(VitWeights, PositionEmbeddingResamplingKeepsTheGrid) {
  // Channel 0 holds the row, channel 1 the column, channel 2 a constant.
  const int g = 4, width = 3;
  torch::Tensor pos = torch::zeros({1, 1 + g * g, width});
  pos[0][0] = torch::tensor({7.0f, 8.0f, 9.0f});
  for (int r = 0; r < g; ++r)
    for (int c = 0; c < g; ++c) pos[0][1 + r * g + c] = torch::tensor({float(r), float(c), 5.0f});

  EXPECT_TRUE(torch::equal(resample_pos_embed(pos, g), pos)) << "same grid: unchanged";
  torch::Tensor up = resample_pos_embed(pos, 8).reshape({-1, width});
  EXPECT_TRUE(torch::equal(up[0], pos[0][0])) << "CLS token kept";
  torch::Tensor grid = up.slice(0, 1).reshape({8, 8, width});
  // Rows stay rows and columns stay columns: channel 0 is constant along each row and
  // never decreases down the grid; channel 1 the same across.
  for (int r = 0; r < 8; ++r) {
    EXPECT_LT((grid[r].select(1, 0) - grid[r][0][0]).abs().max().item<double>(), 1e-5);
    EXPECT_LT((grid.select(1, r).select(1, 1) - grid[0][r][1]).abs().max().item<double>(), 1e-5);
    if (r > 0) {
      EXPECT_GE(grid[r][0][0].item<double>(), grid[r - 1][0][0].item<double>() - 1e-6);
    }
  }
  EXPECT_LT((grid.select(2, 2) - 5.0).abs().max().item<double>(), 1e-5) << "a constant stays constant";
  EXPECT_LT(grid[0][0][0].item<double>(), 0.5);
  EXPECT_GT(grid[7][0][0].item<double>(), 2.5);
}

TEST(VitWeights, LoadsIntoALargerImageByResamplingPositions) {
  VitConfig c = fixture_config(5, VitPool::Cls, 1e-6);
  c.image_size = 48;  // 6x6 patches instead of 4x4
  Vit model(c);
  LoadReport r = load_vit_weights(model, vit_fixture("timm_token.safetensors"));
  EXPECT_EQ(r.interpolated, "4x4 -> 6x6 (bicubic)");
  torch::NoGradGuard no_grad;
  model->eval();
  EXPECT_EQ(model->forward(torch::randn({1, 3, 48, 48})).sizes(), (std::vector<int64_t>{1, 5}));
}

TEST(VitWeights, ExportThenImportGivesIdenticalLogits) {
  torch::manual_seed(11);
  Vit model(fixture_config(5, VitPool::Cls, 1e-6));
  load_vit_weights(model, vit_fixture("timm_token.safetensors"));
  TempDir dir;
  export_vit_huggingface(model, dir.path() + "/out", {"a", "b", "c", "d", "e"});
  Vit back(fixture_config(5, VitPool::Cls, 1e-6));
  LoadReport r = load_vit_weights(back, dir.path() + "/out/model.safetensors");
  EXPECT_EQ(r.layout, WeightLayout::HuggingFace);
  EXPECT_TRUE(torch::equal(logits_of(model), logits_of(back)));
  EXPECT_NE(read_file(dir.path() + "/out/config.json").find("\"4\": \"e\""), std::string::npos);
}

// transformers itself loads the export (scripts/setup.sh installs it) and must
// reproduce flowrun's logits.
TEST(VitWeights, ExportLoadsInTransformersWithTheSameLogits) {
  Vit model(fixture_config(5, VitPool::Cls, 1e-12));
  load_vit_weights(model, vit_fixture("timm_token.safetensors"));
  TempDir dir;
  export_vit_huggingface(model, dir.path() + "/export");
  torch::Tensor logits = logits_of(model).contiguous();
  torch::Tensor input = expected_tensor("input").contiguous();
  write_safetensors(dir.path() + "/check.safetensors",
                    {{"input", DType::F32, input.sizes().vec(), input.data_ptr()},
                     {"logits", DType::F32, logits.sizes().vec(), logits.data_ptr()}});
  const std::string python = source_dir() + "/.venv/bin/python";
  const std::string cmd = python + " " + source_dir() + "/tools/check_hf_export.py " + dir.path() + "/export " +
                          dir.path() + "/check.safetensors > " + dir.path() + "/log.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << read_file(dir.path() + "/log.txt");
}

}  // namespace
}  // namespace flowrun::testing
