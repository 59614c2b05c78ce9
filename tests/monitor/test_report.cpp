// The report stage on a real run: metrics.jsonl, eval.json, misclassified.json and
// report.html, checked for structure (the rendering was looked at in Chromium, see
// docs/report.md); plus the encoders the report uses.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "flowrun/pipeline.hpp"
#include "stages/monitor/report_html.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string report_pipeline() {
  const std::string tar = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  const std::string classes = R"(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"])";
  return R"({"name": "report_test", "seed": 2, "device": "cpu", "threads": 2, "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "train/", "classes": )" + classes +
         R"(, "per_class_limit": 8, "epochs": 2}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "test/", "classes": )" + classes +
         R"(, "per_class_limit": 5, "shuffle": false, "epochs": 2}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 20}},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2,
        "lr": 2e-3, "log_every": 1, "threads": 1, "ema_decay": 0.9,
        "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate", "params": {"misclassified_top": 6}},
    {"id": "test", "plugin": "evaluate", "params": {"misclassified_top": 6}},
    {"id": "report", "plugin": "report"},
    {"id": "final_data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "test/", "classes": )" + classes +
         R"(, "per_class_limit": 3, "shuffle": false}},
    {"id": "final_decode", "plugin": "jpeg_decode"},
    {"id": "final_batch", "plugin": "batch", "params": {"batch_size": 24}}],
  "edges": ["data -> decode -> batch -> train.train", "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model",
            "final_data -> final_decode -> final_batch -> test.batch", "train.final_model -> test.model",
            "train -> report.metrics", "train.evaluations -> report.evaluations"]})";
}

TEST(Report, WritesJsonLinesEvalJsonMisclassifiedAndAnHtmlReport) {
  TempDir dir;
  RunOptions options;
  options.run_folder = dir.path();
  Pipeline p(describe(report_pipeline()), options);
  p.run();
  // metrics.jsonl: every record, in order: 8 train steps (log_every 1), 2 epochs, 2 evaluations.
  std::ifstream in(dir.path() + "/metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  std::map<std::string, int> scopes;
  for (const auto& r : records) ++scopes[r.at("scope").get<std::string>()];
  EXPECT_EQ(scopes["train"], 8);
  EXPECT_EQ(scopes["train_epoch"], 2);
  EXPECT_EQ(scopes["eval"], 2);
  EXPECT_EQ(scopes["test"], 1);
  const auto test = nlohmann::json::parse(read_file(dir.path() + "/test.json"));
  EXPECT_EQ(test["split"], "test");
  EXPECT_EQ(test["metrics"]["count"], 24);
  for (const auto& r : records) {
    if (r["scope"] == "train") {
      for (const char* key : {"step", "epoch", "loss", "accuracy", "lr", "grad_norm", "images_per_s", "lr_layer0",
                              "lr_layer0_no_decay", "lr_layer3"})  // per optimizer group (depth 2: the head is layer 3)
        EXPECT_TRUE(r.contains(key)) << key << " missing in " << r.dump();
    }
  }
  // eval.json: the last evaluation in full.
  const auto eval = nlohmann::json::parse(read_file(dir.path() + "/eval.json"));
  EXPECT_EQ(eval["epoch"], 1);
  EXPECT_EQ(eval["metrics"]["count"], 40);
  ASSERT_EQ(eval["metrics"]["per_class"].size(), 8u);
  ASSERT_EQ(eval["metrics"]["confusion"].size(), 8u);
  std::int64_t confusion_total = 0;
  for (const auto& row : eval["metrics"]["confusion"]) {
    ASSERT_EQ(row.size(), 8u);
    for (const auto& v : row) confusion_total += v.get<std::int64_t>();
  }
  EXPECT_EQ(confusion_total, 40);
  EXPECT_TRUE(eval.contains("ema_metrics"));
  // misclassified.json: the 6 highest losses, wrong ones only, highest first.
  const auto wrong = nlohmann::json::parse(read_file(dir.path() + "/misclassified.json"))["samples"];
  ASSERT_EQ(wrong.size(), 6u);
  for (std::size_t i = 0; i < wrong.size(); ++i) {
    EXPECT_NE(wrong[i]["true"], wrong[i]["predicted"]);
    EXPECT_EQ(wrong[i]["key"].get<std::string>().rfind("test/", 0), 0u);
    if (i > 0) {
      EXPECT_GE(wrong[i - 1]["loss"].get<double>(), wrong[i]["loss"].get<double>());
    }
  }
  // report.html: self-contained, every section there.
  const std::string html = read_file(dir.path() + "/report.html");
  for (const char* id : {"id=\"summary\"", "id=\"chart-loss\"", "id=\"chart-accuracy\"", "id=\"chart-lr\"",
                         "id=\"chart-throughput\"", "id=\"chart-grad-norm\"", "id=\"confusion\"", "id=\"per-class\"",
                         "id=\"misclassified\"", "id=\"pipeline-graph\"", "id=\"description\"", "id=\"test-confusion\"",
                         "id=\"test-per-class\"", "id=\"test-misclassified\""})
    EXPECT_NE(html.find(id), std::string::npos) << id;
  EXPECT_EQ(count(html, "<script"), 0u);
  EXPECT_EQ(count(html, "http://") + count(html, "https://"), count(html, "http://www.w3.org/2000/svg"));
  EXPECT_EQ(count(html, "src=\"data:image/bmp;base64,"), 12u);  // 6 validation + 6 test
  const std::string confusion = html.substr(html.find("id=\"confusion\""));
  EXPECT_EQ(count(confusion.substr(0, confusion.find("</table>")), "<td "), 64u);
  EXPECT_GE(count(html, "<polyline"), 8u);  // train/val loss and accuracy, lr, throughput, grad norm...
  for (const char* node : {">data<", ">train<", ">report<", ">test_batch<"}) EXPECT_NE(html.find(node), std::string::npos) << node;
  EXPECT_NE(html.find("finished"), std::string::npos);
}

TEST(Report, Base64AndBmpEncoders) {
  const std::string text = "foobar";
  EXPECT_EQ(base64(reinterpret_cast<const std::uint8_t*>(text.data()), 6), "Zm9vYmFy");
  EXPECT_EQ(base64(reinterpret_cast<const std::uint8_t*>(text.data()), 4), "Zm9vYg==");
  EXPECT_EQ(base64(reinterpret_cast<const std::uint8_t*>(text.data()), 5), "Zm9vYmE=");
  Thumbnail t;
  t.width = 2;
  t.height = 2;
  t.rgb = {255, 0, 0, 0, 255, 0,  // top row: red, green
           0, 0, 255, 9, 9, 9};   // bottom row: blue, grey
  const std::string bmp = bmp_of(t);
  ASSERT_EQ(bmp.size(), 54u + 2 * 8);  // rows padded to 4 bytes
  EXPECT_EQ(bmp.substr(0, 2), "BM");
  // Bottom-up, BGR: the first stored row is the bottom one (blue, grey).
  EXPECT_EQ(static_cast<unsigned char>(bmp[54 + 0]), 255);  // blue's B
  EXPECT_EQ(static_cast<unsigned char>(bmp[54 + 3]), 9);
  EXPECT_EQ(static_cast<unsigned char>(bmp[54 + 8 + 2]), 255);  // top row: red's R
  EXPECT_EQ(static_cast<unsigned char>(bmp[54 + 8 + 4]), 255);  // green's G
}

TEST(Report, SketchesThePipelineFromItsDescription) {
  const PipelineSketch p = sketch_pipeline(
      R"({"nodes": [{"id": "a", "plugin": "tar"}, {"id": "b", "plugin": "batch"}, {"id": "t", "plugin": "train"}],
          "edges": ["a -> b -> t.train", ["t.metrics", "b"]]})");
  EXPECT_EQ(p.nodes, (std::vector<std::string>{"a", "b", "t"}));
  EXPECT_EQ(p.plugins[2], "train");
  EXPECT_EQ(p.edges, (std::vector<std::pair<int, int>>{{0, 1}, {1, 2}, {2, 1}}));
}

}  // namespace
}  // namespace flowrun::testing
