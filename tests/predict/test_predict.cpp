// Using a trained model from the command line: `flowrun evaluate` gives the training
// run's final evaluation again, `flowrun predict` labels images as that evaluation
// did, exports behave as their checkpoints, transformers computes the same
// probabilities, and bad inputs end with a message, never a crash or a damaged file.
//
// One short real training run (the quickstart's model and chain, 100 CIFAR-10 JPEGs a
// class, one epoch, 30 test images a class) per test, in a temporary folder.
#include <gtest/gtest.h>
#include <png.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stages/decode/image_decode.hpp"
#include "stages/sources/tar_archive.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<double> kMean = {0.4914, 0.4822, 0.4465};
const std::vector<double> kStd = {0.247, 0.2435, 0.2616};

std::string cifar_tar() { return source_dir() + "/../shared/data/cifar10-jpeg.tar"; }

// Trains the quickstart briefly into `run`; returns its best.h5.
std::string train_small_model(const std::string& run) {
  const std::string tar = "[\"" + cifar_tar() + "\"]";
  const auto r = run_flowrun({source_dir() + "/pipelines/quickstart.json", "--run-dir", run,
                              "--set", "nodes.train_data.params.paths=" + tar, "--set", "nodes.test_data.params.paths=" + tar,
                              "--set", "nodes.train_data.params.epochs=1", "--set", "nodes.test_data.params.epochs=1",
                              "--set", "nodes.train_data.params.per_class_limit=100",
                              "--set", "nodes.test_data.params.per_class_limit=30",
                              "--set", "nodes.test_batch.params.batch_size=64"},
                             -1, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return run + "/checkpoints/best.h5";
}

// The first `per_class` test images of each class (what per_class_limit keeps) as
// files under folder/<class>/.
void extract_test_images(const std::string& folder, int per_class) {
  const auto tar = TarArchive::open(cifar_tar());
  std::map<std::string, int> taken;
  std::vector<const TarArchive::Member*> members;
  for (const auto& m : tar->members())
    if (m.name.rfind("test/", 0) == 0) members.push_back(&m);
  std::sort(members.begin(), members.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const TarArchive::Member* m : members) {
    const std::string relative = m->name.substr(5);
    const std::string cls = relative.substr(0, relative.find('/'));
    if (taken[cls]++ >= per_class) continue;
    fs::create_directories(fs::path(folder) / cls);
    std::ofstream out(fs::path(folder) / relative, std::ios::binary);
    out.write(reinterpret_cast<const char*>(tar->data(*m)), static_cast<std::streamsize>(m->size));
  }
}

// The same images in CIFAR-10's binary layout (root/cifar-10-batches-bin/test_batch.bin:
// a label byte, then the R, G and B planes), decoded as flowrun's decode stage decodes
// them: the cifar10 source then emits exactly the pixels the JPEG chain computes.
void write_cifar_binary(const std::string& images, const std::string& root, const std::vector<std::string>& classes) {
  const std::string folder = root + "/cifar-10-batches-bin";
  fs::create_directories(folder);
  std::ofstream meta(folder + "/batches.meta.txt");
  for (const std::string& c : classes) meta << c << "\n";
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(images))
    if (e.is_regular_file()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::ofstream out(folder + "/test_batch.bin", std::ios::binary);
  for (const std::string& f : files) {
    const std::string bytes = read_file(f);
    const Image image = decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), {});
    ASSERT_EQ(image.height, 32);
    const std::string cls = fs::path(f).parent_path().filename().string();
    out.put(static_cast<char>(std::find(classes.begin(), classes.end(), cls) - classes.begin()));
    for (int c = 0; c < 3; ++c)
      for (std::size_t p = 0; p < image.pixel_count(); ++p) out.put(static_cast<char>(image.u8[p * 3 + c]));
  }
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

json metrics_of(const std::string& path) { return json::parse(read_file(path))["metrics"]; }

// Every headline figure and the whole confusion matrix, exactly.
void expect_same_evaluation(const json& a, const json& b, const std::string& what) {
  for (const char* key : {"loss", "accuracy", "top5_accuracy", "macro_f1", "count", "confusion"})
    EXPECT_EQ(a[key], b[key]) << what << ": " << key;
}

void write_png(const std::string& path, int width, int height) {
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(width * height * 3));
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = PNG_FORMAT_RGB;
  ASSERT_NE(png_image_write_to_file(&image, path.c_str(), 0, pixels.data(), 0, nullptr), 0) << image.message;
}

TEST(SavedModels, EvaluateAndPredictGiveTheTrainingRunsFinalEvaluation) {
  TempDir dir;
  const std::string best = train_small_model(dir.path() + "/train");
  const json trained = metrics_of(dir.path() + "/train/eval.json");
  ASSERT_EQ(trained["count"], 300);

  // evaluate without --data reads what the run evaluated on, through the same chain.
  auto r = run_flowrun({"evaluate", best, "--run-dir", dir.path() + "/eval"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_evaluation(metrics_of(dir.path() + "/eval/test.json"), trained, "evaluate (the run's data)");
  EXPECT_TRUE(fs::exists(dir.path() + "/eval/report.html"));
  EXPECT_NE(r.out.find("accuracy " + std::to_string(trained["accuracy"].get<double>()).substr(0, 6)), std::string::npos)
      << r.out;

  // The same images as files: evaluate --data (image folder) and predict agree with it.
  const std::string images = dir.path() + "/images";
  extract_test_images(images, 30);
  r = run_flowrun({"evaluate", best, "--data", images, "--run-dir", dir.path() + "/eval_folder"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_evaluation(metrics_of(dir.path() + "/eval_folder/test.json"), trained, "evaluate --data FOLDER");

  // ... and as CIFAR-10's binary release: the cifar10 source emits decoded images, so
  // the chain's decode node is left out.
  const std::vector<std::string> classes = json::parse(read_file(dir.path() + "/train/eval.json"))["classes"];
  write_cifar_binary(images, dir.path() + "/cifar", classes);
  r = run_flowrun({"evaluate", best, "--data", dir.path() + "/cifar", "--split", "test", "--run-dir",
                   dir.path() + "/eval_binary"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_evaluation(metrics_of(dir.path() + "/eval_binary/test.json"), trained, "evaluate --data CIFAR-BINARY");

  r = run_flowrun({"predict", best, images, "--top-k", "3"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find(" info "), std::string::npos) << "log lines on standard output:\n" << r.out;
  const std::string predicted_text = r.out;
  const std::vector<json> predictions = json_lines(r.out);
  ASSERT_EQ(predictions.size(), 300u);
  std::vector<std::vector<std::int64_t>> confusion(classes.size(), std::vector<std::int64_t>(classes.size(), 0));
  std::map<std::string, std::string> predicted_by_name;  // "cat/0003.jpg" -> class
  for (const json& p : predictions) {
    const fs::path path = p["path"].get<std::string>();
    const std::string truth = path.parent_path().filename().string();
    ASSERT_EQ(p["top"].size(), 3u);
    EXPECT_GE(p["top"][0]["p"].get<double>(), p["top"][1]["p"].get<double>());
    EXPECT_EQ(p["top"][0]["class"], classes[p["top"][0]["index"].get<std::size_t>()]);
    const auto t = std::find(classes.begin(), classes.end(), truth) - classes.begin();
    ++confusion[static_cast<std::size_t>(t)][p["top"][0]["index"].get<std::size_t>()];
    predicted_by_name[truth + "/" + path.filename().string()] = p["top"][0]["class"];
  }
  EXPECT_EQ(json(confusion), trained["confusion"]) << "predict's argmax differs from the run's final evaluation";
  // The run's most confidently wrong samples, one by one.
  const json wrong = json::parse(read_file(dir.path() + "/train/misclassified.json"))["samples"];
  ASSERT_FALSE(wrong.empty());
  for (const json& w : wrong) EXPECT_EQ(predicted_by_name.at(w["key"].get<std::string>().substr(5)), w["predicted"]) << w["key"];

  // An export predicts the same, digit for digit, and transformers agrees with it.
  r = run_flowrun({"export", best, dir.path() + "/export"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto from_export = run_flowrun({"predict", dir.path() + "/export", images, "--top-k", "3"}, -1, SIGINT, 120);
  ASSERT_EQ(from_export.exit_code, 0) << from_export.err;
  EXPECT_EQ(from_export.out, predicted_text);
  // The same folder as Hugging Face would have it (no flowrun key; the normalization in
  // preprocessor_config.json): the default chain (decode, resize to 32, normalize) gives
  // the same output for these 32-px images.
  fs::create_directories(dir.path() + "/hf");
  fs::copy_file(dir.path() + "/export/model.safetensors", dir.path() + "/hf/model.safetensors");
  json config = json::parse(read_file(dir.path() + "/export/config.json"));
  config.erase("flowrun");
  dir.write("hf/config.json", config.dump(2));
  dir.write("hf/preprocessor_config.json", json{{"image_mean", kMean}, {"image_std", kStd}}.dump());
  const auto from_hf = run_flowrun({"predict", dir.path() + "/hf", images, "--top-k", "3"}, -1, SIGINT, 120);
  ASSERT_EQ(from_hf.exit_code, 0) << from_hf.err;
  EXPECT_EQ(from_hf.out, predicted_text);

  std::ofstream(dir.path() + "/predictions.jsonl") << from_export.out;
  std::ostringstream cmd;
  cmd << source_dir() << "/.venv/bin/python " << source_dir() << "/tools/check_predictions.py " << dir.path()
      << "/export " << dir.path() << "/predictions.jsonl --mean " << kMean[0] << ' ' << kMean[1] << ' ' << kMean[2]
      << " --std " << kStd[0] << ' ' << kStd[1] << ' ' << kStd[2] << " > " << dir.path() << "/check.txt 2>&1";
  EXPECT_EQ(std::system(cmd.str().c_str()), 0) << read_file(dir.path() + "/check.txt");
}

// On a GPU (bench/device_check.sh runs the suite there), the model a CPU run saved scores
// and labels the same images with --device cuda as the CPU did. fp32 on both sides
// (auto would be bf16 on CUDA); cuDNN still convolves the patch embedding in TF32 by
// default, so the tolerances (loss 0.5% relative, at most 3 of 300 top classes changed,
// probabilities within 0.01) are a first guess that no GPU has checked yet.
TEST(SavedModels, EvaluateAndPredictOnCudaAgreeWithTheCpu) {
  if (!has_nvidia_device())
    GTEST_SKIP() << "no GPU here (no /dev/nvidiaN); bench/device_check.sh runs this case on one";
  TempDir dir;
  const std::string best = train_small_model(dir.path() + "/train");
  const json on_cpu = metrics_of(dir.path() + "/train/eval.json");
  const std::string fp32 = "nodes.model.params.precision=fp32";
  auto r = run_flowrun({"evaluate", best, "--device", "cuda", "--set", fp32, "--run-dir", dir.path() + "/eval"}, -1,
                       SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json on_gpu = metrics_of(dir.path() + "/eval/test.json");
  EXPECT_EQ(on_gpu["count"], on_cpu["count"]);
  EXPECT_NEAR(on_gpu["loss"].get<double>(), on_cpu["loss"].get<double>(), 0.005 * on_cpu["loss"].get<double>());
  EXPECT_NEAR(on_gpu["accuracy"].get<double>(), on_cpu["accuracy"].get<double>(), 3.0 / 300 + 1e-9);

  const std::string images = dir.path() + "/images";
  extract_test_images(images, 30);
  const auto cpu_run = run_flowrun({"predict", best, images, "--device", "cpu"}, -1, SIGINT, 120);
  const auto gpu_run = run_flowrun({"predict", best, images, "--device", "cuda", "--set", fp32}, -1, SIGINT, 120);
  ASSERT_EQ(cpu_run.exit_code, 0) << cpu_run.err;
  ASSERT_EQ(gpu_run.exit_code, 0) << gpu_run.err;
  std::map<std::string, json> cpu_top;
  for (const json& p : json_lines(cpu_run.out)) cpu_top[p["path"]] = p["top"][0];
  const std::vector<json> gpu_lines = json_lines(gpu_run.out);
  ASSERT_EQ(gpu_lines.size(), 300u);
  int changed = 0;
  for (const json& p : gpu_lines) {
    const json& cpu = cpu_top.at(p["path"].get<std::string>());
    if (p["top"][0]["index"] != cpu["index"]) ++changed;
    else EXPECT_NEAR(p["top"][0]["p"].get<double>(), cpu["p"].get<double>(), 0.01) << p["path"];
  }
  EXPECT_LE(changed, 3) << "top classes that differ between the CPU and the GPU";
}

TEST(SavedModels, PredictSkipsBrokenFilesResizesAnySizeAndNeverDamagesAnOutput) {
  TempDir dir;
  const std::string best = train_small_model(dir.path() + "/train");
  const std::string images = dir.path() + "/images";
  extract_test_images(images, 2);
  dir.write("images/broken.jpg", "not an image");
  write_png(images + "/large.png", 80, 50);

  const std::string csv = dir.path() + "/out.csv";
  auto r = run_flowrun({"predict", best, images, "--top-k", "2", "--output", csv}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipping " + images + "/broken.jpg"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("21 images labelled"), std::string::npos) << r.out;
  const std::string written = read_file(csv);
  EXPECT_EQ(written.rfind("path,class_1,index_1,p_1,class_2,index_2,p_2\n", 0), 0u) << written;
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 22);  // header + 20 CIFAR images + large.png
  EXPECT_NE(written.find(images + "/large.png,"), std::string::npos);

  // A run that fails (nothing decodable) leaves the earlier file as it was.
  r = run_flowrun({"predict", best, images + "/broken.jpg", "--output", csv}, -1, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no image could be labelled"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(csv), written);

  // The chain as it would run, with --set applied.
  r = run_flowrun({"predict", best, images, "--dry-run", "--set", "nodes.test_batch.params.batch_size=7"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json pipeline = json::parse(r.out);
  bool batch_size_set = false;
  for (const json& n : pipeline["nodes"])
    batch_size_set = batch_size_set || (n["id"] == "test_batch" && n["params"]["batch_size"] == 7);
  EXPECT_TRUE(batch_size_set) << r.out;

  // Usage mistakes: exit 2, named.
  r = run_flowrun({"predict", dir.path() + "/nothing.h5", images});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no such model: " + dir.path() + "/nothing.h5"), std::string::npos) << r.err;
  r = run_flowrun({"predict", dir.write("junk.h5", "junk"), images});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("junk.h5 is not a readable HDF5 file"), std::string::npos) << r.err;
  r = run_flowrun({"evaluate", best, "--ema"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("has no EMA weights"), std::string::npos) << r.err;
  r = run_flowrun({"predict", best, dir.path() + "/missing"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("INPUT " + dir.path() + "/missing: no such file or folder"), std::string::npos) << r.err;
  r = run_flowrun({"predict", best, images, "--output", dir.path() + "/no/such/folder/p.csv"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  r = run_flowrun({"evaluate", best, "--split", "test"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--split test names a part of --data"), std::string::npos) << r.err;
  r = run_flowrun({"evaluate", best, "--data", dir.path() + "/missing"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--data " + dir.path() + "/missing: expected a tar file"), std::string::npos) << r.err;
}

// The ViT-B/16 pipelines' evaluation chain resizes whole batches on the device
// (test_batch -> batch_resize -> batch_normalize): too late for images of several sizes,
// so predict resizes each image to the model's size before batching.
TEST(SavedModels, PredictResizesBeforeBatchingWhenTheChainResizesBatches) {
  TempDir dir;
  json doc = json::parse(read_file(source_dir() + "/pipelines/quickstart.json"), nullptr, true, true);
  for (json& n : doc["nodes"]) {
    if (n["id"] == "test_batch") n["params"] = {{"batch_size", 64}};
    if (n["id"] == "train_data" || n["id"] == "test_data") {
      n["params"]["paths"] = {cifar_tar()};
      n["params"]["epochs"] = 1;
      n["params"]["per_class_limit"] = n["id"] == "train_data" ? 20 : 5;
    }
  }
  doc["nodes"].push_back({{"id", "test_resize"}, {"plugin", "batch_resize"}, {"params", {{"size", {32}}}}});
  doc["nodes"].push_back({{"id", "test_norm"}, {"plugin", "batch_normalize"}, {"params", {{"mean", kMean}, {"std", kStd}}}});
  for (json& e : doc["edges"])
    if (e == "test_data -> test_decode -> test_batch -> eval.batch")
      e = "test_data -> test_decode -> test_batch -> test_resize -> test_norm -> eval.batch";
  const std::string pipeline = dir.write("p.json", doc.dump(2));
  auto r = run_flowrun({pipeline, "--run-dir", dir.path() + "/train"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string best = dir.path() + "/train/checkpoints/best.h5";
  const std::string images = dir.path() + "/images";
  extract_test_images(images, 1);
  write_png(images + "/large.png", 80, 50);
  r = run_flowrun({"predict", best, images, "--top-k", "1"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json_lines(r.out).size(), 11u) << r.out;
}

}  // namespace
}  // namespace flowrun::testing
