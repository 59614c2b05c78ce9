// The train stage in real pipelines on the CIFAR-10 JPEGs: it learns (a tiny ViT
// overfits 64 images), evaluates on its eval input after every epoch, and the
// evaluation protocol does not depend on thread timing.
#include <gtest/gtest.h>

#include <filesystem>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "stages/core/collect.hpp"
#include "stages/monitor/event_file.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

std::string cifar_tar() { return source_dir() + "/../shared/data/cifar10-jpeg.tar"; }

// 64 training images (8 classes x 8) and, optionally, an eval input on 80 test images.
std::string pipeline_json(int epochs, bool with_eval, const std::string& train_params,
                          const std::string& tensorboard_dir = "") {
  std::string nodes = R"(
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "train/",
        "classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"],
        "per_class_limit": 8, "epochs": )" + std::to_string(epochs) + R"(}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 32, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "train", "plugin": "train", "params": )" + train_params + R"(},
    {"id": "log", "plugin": "collect"})";
  std::string edges = R"("data -> decode -> batch -> train.train", "train -> log")";
  if (!tensorboard_dir.empty()) {
    nodes += R"(, {"id": "tb", "plugin": "tensorboard", "params": {"logdir": ")" + tensorboard_dir + R"("}})";
    edges += R"(, "train -> tb")";
  }
  if (with_eval) {
    nodes += R"(,
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "test/",
        "classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"],
        "per_class_limit": 10, "shuffle": false, "epochs": )" + std::to_string(epochs) + R"(}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 25, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate"})";
    edges += R"(, "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model")";
  }
  return R"({"name": "train_test", "seed": 4, "device": "cpu", "prefetch": 256, "nodes": [)" + nodes +
         R"(], "edges": [)" + edges + "]}";
}

const char* kTinyModel = R"({"model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2, "drop_path": 0.0,
    "lr": 2e-3, "weight_decay": 0.0, "label_smoothing": 0.0, "warmup_steps": 5, "schedule": "constant",
    "log_every": 1000, "threads": 1})";

double value_of(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in: " + line);
  return std::stod(line.substr(at + key.size() + 2));
}

std::vector<std::string> metrics_lines(Pipeline& p, const std::string& scope) {
  std::vector<std::string> out;
  for (const auto& item : static_cast<const Collect&>(*p.stage("log")).items())
    if (item.signal == "data" && item.payload.rfind(scope + " ", 0) == 0) out.push_back(item.payload);
  return out;
}

TEST(TrainPipeline, ATinyVitOverfits64RealCifarImages) {
  Pipeline p(describe(pipeline_json(100, false, kTinyModel), {"nodes.train.params.lr=3e-3"}));
  p.run();
  const auto epochs = metrics_lines(p, "train_epoch");
  ASSERT_EQ(epochs.size(), 100u);
  EXPECT_LT(value_of(epochs.front(), "accuracy"), 0.5);
  EXPECT_GE(value_of(epochs.back(), "accuracy"), 0.95) << epochs.back();
}

TEST(TrainPipeline, EvaluatesAfterEveryEpochOnTheEvalInput) {
  Pipeline p(describe(pipeline_json(3, true, kTinyModel)));
  p.run();
  const auto evals = metrics_lines(p, "eval");
  ASSERT_EQ(evals.size(), 3u);
  for (std::size_t e = 0; e < evals.size(); ++e) {
    EXPECT_EQ(value_of(evals[e], "samples"), 80) << evals[e];
    EXPECT_EQ(evals[e].rfind("eval epoch " + std::to_string(e) + " step " + std::to_string(2 * (e + 1)) + " ", 0), 0u)
        << "evaluation " << e << " sees the model after epoch " << e << ": " << evals[e];
  }
}

TEST(TrainPipeline, WritesTensorBoardScalarsAtOptimizerSteps) {
  TempDir dir;
  std::string params = kTinyModel;
  params.replace(params.find("\"log_every\": 1000"), 17, "\"log_every\": 1");
  Pipeline p(describe(pipeline_json(2, true, params, dir.path() + "/tb")));
  p.run();
  std::map<std::string, std::vector<std::int64_t>> steps;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() + "/tb"))
    for (const Event& e : read_event_file(entry.path().string()))
      for (const EventScalar& s : e.scalars) steps[s.tag].push_back(e.step);
  EXPECT_EQ(steps["Loss/train"], (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(steps["LR"], (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(steps["GradNorm"].size(), 4u);
  EXPECT_EQ(steps["Accuracy/val"], (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(steps["Loss/val"], (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(steps["Loss/train_epoch"], (std::vector<std::int64_t>{2, 4}));
}

TEST(TrainPipeline, EvaluationResultsDoNotDependOnThreadCount) {
  std::vector<std::vector<std::string>> runs;
  for (const char* threads : {"threads=1", "threads=3"}) {
    Pipeline p(describe(pipeline_json(2, true, kTinyModel), {threads}));
    p.run();
    runs.push_back(metrics_lines(p, "eval"));
  }
  ASSERT_EQ(runs[0].size(), 2u);
  EXPECT_EQ(runs[0], runs[1]);
}

TEST(TrainPipeline, ExportsAModelThatLoadsAsPretrained) {
  TempDir dir;
  std::string params = kTinyModel;
  params.insert(params.size() - 1, R"(, "export": ")" + dir.path() + R"(/exported")");
  Pipeline first(describe(pipeline_json(1, false, params)));
  first.run();
  ASSERT_TRUE(std::filesystem::exists(dir.path() + "/exported/model.safetensors"));
  ASSERT_TRUE(std::filesystem::exists(dir.path() + "/exported/config.json"));
  std::string again = kTinyModel;
  again.insert(again.size() - 1, R"(, "pretrained": ")" + dir.path() + R"(/exported", "strategy": "linear_probe")");
  Pipeline second(describe(pipeline_json(1, false, again)));
  EXPECT_NO_THROW(second.run());
}

}  // namespace
}  // namespace flowrun::testing

namespace flowrun::testing {
namespace {

// train (64 images) with a validation split from the training folder and a test split,
// evaluated once at the end: also when early stopping ends the run first.
std::string test_split_pipeline(const std::string& extra_train) {
  const std::string classes = R"(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"])";
  return R"({"name": "test_split", "seed": 4, "device": "cpu", "threads": 2, "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "train/", "classes": )" +
         classes + R"(, "per_class_limit": 10, "split": "train", "val_fraction": 0.2, "epochs": 6}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "val_data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "train/", "classes": )" +
         classes + R"(, "per_class_limit": 10, "split": "val", "val_fraction": 0.2, "shuffle": false, "epochs": 6}},
    {"id": "val_decode", "plugin": "jpeg_decode"},
    {"id": "val_batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "test/", "classes": )" +
         classes + R"(, "per_class_limit": 5, "shuffle": false}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate"},
    {"id": "test", "plugin": "evaluate"},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2,
        "threads": 1, "log_every": 100)" + extra_train + R"(}},
    {"id": "log", "plugin": "collect"}],
  "edges": ["data -> decode -> batch -> train.train", "val_data -> val_decode -> val_batch -> eval.batch", "train.model -> eval.model",
            "test_data -> test_decode -> test_batch -> test.batch", "train.final_model -> test.model", "train -> log"]})";
}

std::vector<std::string> scopes_in_order(Pipeline& p) {
  std::vector<std::string> out;
  for (const auto& item : static_cast<const Collect&>(*p.stage("log")).items())
    if (item.signal == "data") out.push_back(item.payload.substr(0, item.payload.find(' ')));
  return out;
}

TEST(TrainPipeline, EvaluatesTheTestSplitOnceAfterTraining) {
  Pipeline p(describe(test_split_pipeline("")));
  p.run();
  const auto scopes = scopes_in_order(p);
  ASSERT_FALSE(scopes.empty());
  EXPECT_EQ(std::count(scopes.begin(), scopes.end(), "eval"), 6);
  EXPECT_EQ(std::count(scopes.begin(), scopes.end(), "test"), 1);
  EXPECT_EQ(scopes.back(), "test") << "the test split comes after the last evaluation";
  const auto tests = metrics_lines(p, "test");
  EXPECT_EQ(value_of(tests.at(0), "samples"), 40);
  EXPECT_EQ(value_of(metrics_lines(p, "eval").back(), "samples"), 16);  // the 20% validation split
}

TEST(TrainPipeline, EarlyStoppingStillEvaluatesTheTestSplit) {
  Pipeline p(describe(test_split_pipeline(R"(, "lr": 0, "early_stopping_metric": "loss", "early_stopping_patience": 1)")));
  const RunReport report = p.run();
  EXPECT_EQ(report.ended_by, "train");
  const auto scopes = scopes_in_order(p);
  EXPECT_EQ(std::count(scopes.begin(), scopes.end(), "eval"), 2);  // the second did not improve: stop
  ASSERT_EQ(std::count(scopes.begin(), scopes.end(), "test"), 1);
  EXPECT_EQ(value_of(metrics_lines(p, "test").at(0), "samples"), 40);
}

}  // namespace
}  // namespace flowrun::testing

namespace flowrun::testing {
namespace {

TEST(TrainPipeline, EvaluatesEveryNStepsAndAtEpochEnds) {
  // 64 images, batch 32: 2 steps an epoch, 3 epochs. Every 4 steps, and after each epoch:
  // steps 2 (epoch end), 4 (epoch end: one evaluation, not two), 6 (epoch end) and none else;
  // with every 3 steps: 2, 3, 4, 6 (6 is an epoch end).
  Pipeline p(describe(pipeline_json(3, true, kTinyModel),
                      {"nodes.train.params.eval_every_steps=3", "nodes.test_data.params.epochs=8"}));
  p.run();
  std::vector<int> steps;
  for (const auto& line : metrics_lines(p, "eval")) steps.push_back(std::stoi(line.substr(line.find(" step ") + 6)));
  EXPECT_EQ(steps, (std::vector<int>{2, 3, 4, 6}));
}

TEST(TrainPipeline, StepEvaluationsNeedEnoughEvalEpochs) {
  Pipeline p(describe(pipeline_json(3, true, kTinyModel), {"nodes.train.params.eval_every_steps=1"}));
  try {
    p.run();
    FAIL() << "ran with too few eval epochs";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("runs 3 epoch(s) but this run evaluates up to 9 times (every 1 steps and after "
                                         "each epoch): set its epochs to 9 or more"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace flowrun::testing

namespace flowrun::testing {
namespace {

// The evaluate node's own outputs carry the numbers the train stage forwards into the
// run's record (which adds the training loss of the moment).
TEST(EvaluatePipeline, ItsOwnOutputCarriesTheNumbersTheTrainStageForwards) {
  std::string json = pipeline_json(2, true, kTinyModel);
  json.replace(json.find(R"({"id": "log", "plugin": "collect"})"), 34,
               R"({"id": "log", "plugin": "collect"}, {"id": "eval_log", "plugin": "collect"})");
  json.replace(json.find(R"("edges": [)"), 10, R"("edges": ["eval.metrics -> eval_log", )");
  Pipeline p(describe(json));
  p.run();
  const auto forwarded = metrics_lines(p, "eval");
  std::vector<std::string> own;
  for (const auto& item : static_cast<const Collect&>(*p.stage("eval_log")).items())
    if (item.signal == "data") own.push_back(item.payload);
  ASSERT_EQ(forwarded.size(), 2u);
  ASSERT_EQ(own.size(), 2u);
  for (std::size_t i = 0; i < own.size(); ++i) {
    EXPECT_EQ(own[i].substr(0, own[i].find(" accuracy")), forwarded[i].substr(0, forwarded[i].find(" accuracy")));
    for (const char* key : {"accuracy", "loss", "macro_f1", "top5_accuracy", "samples"})
      EXPECT_EQ(value_of(own[i], key), value_of(forwarded[i], key)) << key;
    EXPECT_NO_THROW(value_of(forwarded[i], "train_loss"));
  }
}

TEST(EvaluatePipeline, TwoEvaluateNodesOnOneModelOutputAreRefusedByName) {
  std::string json = pipeline_json(1, true, kTinyModel);
  json.replace(json.find(R"({"id": "log", "plugin": "collect"})"), 34,
               R"({"id": "log", "plugin": "collect"}, {"id": "eval2", "plugin": "evaluate"})");
  json.replace(json.find(R"("edges": [)"), 10, R"("edges": ["test_batch -> eval2.batch", "train.model -> eval2.model", )");
  Pipeline p(describe(json));
  try {
    p.run();
    FAIL() << "two answers to one evaluation point were accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("the model output feeds 2 evaluate nodes (eval, eval2)"), std::string::npos)
        << e.what();
  }
}

// uint8 evaluation batches are fine when the train stage lends its mean and std with
// the model; with neither, validation says so at the evaluate node's location.
TEST(EvaluatePipeline, Uint8EvalBatchesNeedTheTrainStagesMeanOrANormalizer) {
  const std::vector<std::string> uint8_eval = {"nodes.test_batch.params.mean=[]", "nodes.test_batch.params.std=[]"};
  EXPECT_NO_THROW(describe(pipeline_json(1, true, kTinyModel),
                           {"nodes.test_batch.params.mean=[]", "nodes.test_batch.params.std=[]",
                            "nodes.train.params.mean=[0.5, 0.5, 0.5]", "nodes.train.params.std=[0.25, 0.25, 0.25]"}));
  try {
    describe(pipeline_json(1, true, kTinyModel), uint8_eval);
    FAIL() << "uint8 batches with nothing to normalize them validated";
  } catch (const DescriptionError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(": batches reach input 'batch' as uint8 from node 'test_batch' and nothing normalizes them"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("/nodes/"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace flowrun::testing
