// Diagnostics: the rules on synthetic curves, and each symptom shown by a real
// pipeline built to have it (zero learning rate, a huge one, a tiny training set).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "flowrun/pipeline.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/core/collect.hpp"
#include "stages/sources/tar_archive.hpp"
#include "stages/train/diagnostics.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

DiagnosticsConfig config() {
  DiagnosticsConfig c;
  c.train_node = "trainer";
  c.batch_node = "batcher";
  c.augment_node = "augment";
  c.lr = 1e-3;
  c.precision = "bf16";
  return c;
}

TEST(Diagnostics, FlatLossAfterWarmupIsNotLearningOnce) {
  Diagnostics d(config());
  d.set_run(100, 10, 32, 10);
  EXPECT_FALSE(d.on_train_window(5, 2.30));  // warmup: ignored
  std::optional<Finding> f;
  for (int step = 20; step <= 60 && !f; step += 10) f = d.on_train_window(step, 2.30 - 0.001 * step / 10);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, "not_learning");
  EXPECT_NE(f->text().find("--set nodes.trainer.params.lr=0.01"), std::string::npos) << f->text();
  EXPECT_FALSE(d.on_train_window(70, 2.30)) << "reported once";
}

TEST(Diagnostics, FallingLossIsFine) {
  Diagnostics d(config());
  d.set_run(100, 10, 32, 10);
  for (int step = 20; step <= 100; step += 10) EXPECT_FALSE(d.on_train_window(step, 2.3 * 100.0 / (100 + 4 * step))) << step;
  EXPECT_FALSE(d.on_evaluation(50, 1.5, 1.6, 0.4));
  EXPECT_FALSE(d.on_evaluation(100, 1.2, 1.4, 0.5));
}

TEST(Diagnostics, ASpikeIsUnstableWithStabilityRemedies) {
  Diagnostics d(config());
  d.set_run(100, 10, 32, 10);
  EXPECT_FALSE(d.on_train_window(20, 2.0));
  EXPECT_FALSE(d.on_train_window(30, 1.6));
  const auto f = d.on_train_window(40, 4.0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, "unstable");
  for (const char* remedy : {"params.lr=0.000333", "params.clip_grad_norm=1.0", "params.warmup_steps=20", "params.precision=fp32"})
    EXPECT_NE(f->text().find(remedy), std::string::npos) << remedy << " in " << f->text();
}

TEST(Diagnostics, ValidationLossRisingWhileTrainingLossFallsIsOverfitting) {
  Diagnostics d(config());
  d.set_run(100, 10, 32, 10);
  EXPECT_FALSE(d.on_evaluation(20, 1.5, 1.40, 0.5));
  EXPECT_FALSE(d.on_evaluation(40, 1.2, 1.45, 0.5));
  const auto f = d.on_evaluation(60, 0.9, 1.60, 0.5);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, "overfitting");
  for (const char* remedy : {"params.weight_decay=0.1", "params.drop_path=0.2", "nodes.augment.plugin=randaugment",
                             "params.early_stopping_metric=loss"})
    EXPECT_NE(f->text().find(remedy), std::string::npos) << remedy << " in " << f->text();
}

TEST(Diagnostics, ChanceAccuracyAndOutOfMemoryAdvice) {
  Diagnostics d(config());
  d.set_run(100, 10, 64, 10);
  EXPECT_FALSE(d.on_evaluation(20, 2.3, 2.3, 0.11));
  EXPECT_FALSE(d.on_evaluation(40, 2.3, 2.3, 0.10));
  const auto f = d.on_evaluation(60, 2.3, 2.3, 0.12);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, "not_learning");
  EXPECT_NE(f->symptom.find("chance level (10% for 10 classes)"), std::string::npos) << f->symptom;
  const Finding oom = d.out_of_memory("DefaultCPUAllocator: can't allocate memory");
  EXPECT_NE(oom.text().find("--set nodes.batcher.params.batch_size=32 --set nodes.trainer.params.accumulation=2"),
            std::string::npos)
      << oom.text();
  EXPECT_NE(oom.text().find("--set nodes.trainer.params.depth=6"), std::string::npos) << oom.text();
}

// --- the symptoms in real runs -------------------------------------------------------

std::string cifar_tar() { return source_dir() + "/../shared/data/cifar10-jpeg.tar"; }

// 8 classes x per_class training images, batch 16; test images for an eval input.
std::string pipeline(int per_class, int epochs, const std::string& train_params) {
  const std::string classes = R"(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"])";
  return R"({"name": "diagnose", "seed": 5, "device": "cpu", "threads": 2, "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "train/", "classes": )" +
         classes + R"(, "per_class_limit": )" + std::to_string(per_class) + R"(, "epochs": )" + std::to_string(epochs) + R"(}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "test/", "classes": )" +
         classes + R"(, "per_class_limit": 10, "shuffle": false, "epochs": )" + std::to_string(epochs) + R"(}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 40, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate"},
    {"id": "train", "plugin": "train", "params": )" + train_params + R"(},
    {"id": "log", "plugin": "collect"}],
  "edges": ["data -> decode -> batch -> train.train", "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model", "train -> log"]})";
}

std::vector<std::string> notes_of(const std::string& json) {
  Pipeline p(describe(json));
  try {
    p.run();
  } catch (const std::exception& e) {
    return {std::string("error: ") + e.what()};
  }
  std::vector<std::string> notes;
  for (const auto& item : static_cast<const Collect&>(*p.stage("log")).items())
    if (item.signal == "data" && item.payload.rfind("note ", 0) == 0) notes.push_back(item.payload);
  return notes;
}

bool any_has(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& l : lines)
    if (l.find(text) != std::string::npos) return true;
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

const char* kTiny = R"("model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2, "threads": 1, "log_every": 2)";

TEST(DiagnosticsPipeline, ZeroLearningRateIsNotLearning) {
  const auto notes = notes_of(pipeline(16, 3, std::string("{") + kTiny + R"(, "lr": 0})"));
  EXPECT_TRUE(any_has(notes, "not learning")) << joined(notes);
  EXPECT_TRUE(any_has(notes, "--set nodes.train.params.lr=1e-3 (the learning rate is 0)")) << joined(notes);
  EXPECT_FALSE(any_has(notes, "overfitting")) << joined(notes);
}

TEST(DiagnosticsPipeline, AHugeLearningRateIsUnstable) {
  const auto notes = notes_of(pipeline(16, 3, std::string("{") + kTiny + R"(, "lr": 1.0, "warmup_steps": 0})"));
  // Either caught as spikes while it goes, or as a divergence that ends the run: both say what to do.
  EXPECT_TRUE(any_has(notes, "unstable training") || any_has(notes, "training diverged")) << joined(notes);
  EXPECT_TRUE(any_has(notes, "--set nodes.train.params.lr=0.333")) << joined(notes);
  EXPECT_FALSE(any_has(notes, "lr=10")) << "never a higher learning rate: " << joined(notes);
}

TEST(DiagnosticsPipeline, ATinyTrainingSetOverfits) {
  // 4 images per class, 30 epochs, no regularization: memorized, validation loss climbs.
  const auto notes = notes_of(pipeline(4, 30, std::string("{") + kTiny +
                                                 R"(, "lr": 3e-3, "drop_path": 0, "weight_decay": 0, "label_smoothing": 0,
                                                    "warmup_steps": 2, "schedule": "constant"})"));
  EXPECT_TRUE(any_has(notes, "overfitting: validation loss rose")) << joined(notes);
  EXPECT_TRUE(any_has(notes, "--set nodes.train.params.early_stopping_metric=loss")) << joined(notes);
}

TEST(DiagnosticsPipeline, DeliberatelyFlippedLabelsAreSuspected) {
  // Ships and frogs from the CIFAR-10 JPEGs as an image folder, with 6 of the
  // ships filed under frog. After 10 epochs the model tells the two apart (93% on the
  // training set), and the flipped ones are enriched among the suspected label errors.
  TempDir dir;
  const auto tar = TarArchive::open(cifar_tar());
  std::map<std::string, int> taken;
  std::set<std::string> flipped;
  for (const auto& m : tar->members()) {
    for (const std::string cls : {"ship", "frog"}) {
      if (m.name.rfind("train/" + cls + "/", 0) != 0 || taken[cls] >= 200) continue;
      const int k = taken[cls]++;
      const bool flip = cls == "ship" && k % 34 == 0;  // 6 of 200
      const std::string folder = dir.path() + "/data/" + (flip ? "frog" : cls);
      std::filesystem::create_directories(folder);
      const std::string name = cls + "_" + std::to_string(k) + ".jpg";
      std::ofstream(folder + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(tar->data(m)),
                                                                  static_cast<std::streamsize>(m.size));
      if (flip) flipped.insert(name);
    }
  }
  ASSERT_EQ(flipped.size(), 6u);
  const std::string json = R"({"name": "labels", "seed": 1, "device": "cpu", "threads": 2, "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "image_folder", "params": {"root": ")" + dir.path() + R"(/data", "epochs": 10}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 20, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2,
        "threads": 1, "lr": 2e-3, "drop_path": 0, "label_smoothing": 0, "label_errors_top": 12, "save_every_steps": 70}},
    {"id": "report", "plugin": "report"},
    {"id": "ckpt", "plugin": "checkpoint", "params": {"keep_last": 0}}],
  "edges": ["data -> decode -> batch -> train.train", "train -> report.metrics", "train.evaluations -> report.evaluations",
            "train.state -> ckpt"]})";
  RunOptions options;
  options.run_folder = dir.path() + "/run";
  Pipeline p(describe(json), options);
  p.run();
  const auto suspects = nlohmann::json::parse(read_file(dir.path() + "/run/label_errors.json"))["samples"];
  int found = 0;
  std::string listed;
  for (const auto& s : suspects) {
    const std::string key = s["key"].get<std::string>();
    listed += key + " (" + s["label"].get<std::string>() + " -> " + s["model_says"].get<std::string>() + ")\n";
    const std::string file = key.substr(key.rfind('/') + 1);
    if (flipped.count(file)) {
      ++found;
      EXPECT_EQ(s["label"], "frog");
      EXPECT_EQ(s["model_says"], "ship");
    }
  }
  // 6 flipped among 400 is a 1.5% base rate: a list of 12 drawn at random would hold 0.18 of
  // them. Half of them among the 12 suspects (the rest are hard pictures: ships on green
  // water, frogs on blue) means the check finds what it should.
  EXPECT_GE(found, 3) << "of 6 flipped labels, found " << found << " among:\n" << listed;
  EXPECT_NE(read_file(dir.path() + "/run/report.html").find("id=\"label-errors\""), std::string::npos);
  // The check's per-sample counts travel in checkpoints: resumed mid-epoch 3, the same suspects.
  RunOptions resumed;
  resumed.run_folder = dir.path() + "/resumed";
  resume_from_checkpoint(dir.path() + "/run/checkpoints/ckpt-step00000070.h5", resumed);
  Pipeline again(describe(json), resumed);
  again.run();
  EXPECT_EQ(read_file(dir.path() + "/resumed/label_errors.json"), read_file(dir.path() + "/run/label_errors.json"));
}

TEST(DiagnosticsPipeline, RunningOutOfMemoryEndsWithAdvice) {
  // A 3.5 GB address-space limit and a model with 1025 tokens per image: the first
  // train step cannot allocate its activations.
  TempDir dir;
  const std::string p = dir.write("p.json", pipeline(8, 1, R"({"model": "vit_cifar_micro", "heads": 2, "threads": 1,
      "log_every": 2, "patch_size": 1, "width": 128, "depth": 4})"));
  const std::string cmd = "bash -c 'ulimit -v 3500000; exec " + flowrun_binary() + " " + p + " --run-dir " + dir.path() +
                          "/run --set nodes.batch.params.batch_size=64' > " + dir.path() + "/out.txt 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string out = read_file(dir.path() + "/out.txt");
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("out of memory in the train step"), std::string::npos) << out;
  EXPECT_NE(out.find("--set nodes.batch.params.batch_size=32 --set nodes.train.params.accumulation=2"), std::string::npos)
      << out;
  EXPECT_NE(out.find("--set nodes.train.params.depth=2"), std::string::npos) << out;
}

}  // namespace
}  // namespace flowrun::testing
