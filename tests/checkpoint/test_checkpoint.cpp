// Checkpoints: the HDF5 layer, the file format round trip, and the contract that
// matters: a run stopped anywhere (a step checkpoint, Ctrl-C, kill -9) and resumed
// ends with the same weights, bit for bit, as one that was never stopped. Plus
// keep_last / best.h5, early stopping, export and the h5py check.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "lib/model/weights.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/checkpoint_plugins.hpp"
#include "stages/checkpoint/hdf5_file.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

std::string cifar_tar() { return source_dir() + "/../shared/data/cifar10-jpeg.tar"; }

// A small real pipeline with every source of randomness a resume must reproduce:
// shuffling, random crops and flips, dropout, drop path; an eval input; 8 classes x
// `per_class` training images, batch 16, `epochs` epochs, a state snapshot every step.
std::string resume_pipeline(int per_class = 8, int epochs = 3, const std::string& extra_train = "") {
  const std::string classes = R"(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse"])";
  return R"({"name": "resume_test", "seed": 11, "device": "cpu", "threads": 2, "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "train/",
        "classes": )" + classes + R"(, "per_class_limit": )" + std::to_string(per_class) + R"(, "epochs": )" +
         std::to_string(epochs) + R"(}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "crop", "plugin": "random_crop", "params": {"size": [32], "padding": [4]}},
    {"id": "flip", "plugin": "horizontal_flip"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 16, "drop_last": true, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + cifar_tar() + R"("], "prefix": "test/",
        "classes": )" + classes + R"(, "per_class_limit": 5, "shuffle": false, "epochs": )" + std::to_string(epochs) + R"(}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 20, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 64, "depth": 2, "heads": 2,
        "dropout": 0.1, "drop_path": 0.2, "lr": 2e-3, "warmup_steps": 3, "log_every": 2, "threads": 1,
        "ema_decay": 0.9)" + (extra_train.find("\"save_every_steps\"") == std::string::npos ? R"(, "save_every_steps": 1)" : "") +
         extra_train + R"(}},
    {"id": "eval", "plugin": "evaluate"},
    {"id": "ckpt", "plugin": "checkpoint", "params": {"keep_last": 0, "best_metric": "accuracy"}},
    {"id": "report", "plugin": "report"}],
  "edges": ["data -> decode -> crop -> flip -> batch -> train.train",
            "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model",
            "train.state -> ckpt", "train -> report.metrics", "train.evaluations -> report.evaluations"]})";
}

std::string step_file(const std::string& folder, int step) {
  char name[64];
  std::snprintf(name, sizeof name, "/ckpt-step%08d.h5", step);
  return folder + name;
}

RunReport run_pipeline(const std::string& json, const std::string& run_folder, const std::string& resume = "",
                       const std::vector<std::string>& overrides = {}) {
  RunOptions options;
  options.run_folder = run_folder;
  if (!resume.empty()) {
    resume_from_checkpoint(resume, options);
  }
  Pipeline p(describe(json, overrides), options);
  return p.run();
}

// Every model, EMA and optimizer tensor bitwise equal; returns how many were compared.
int expect_same_training_state(const std::string& a, const std::string& b) {
  const CheckpointFile x = read_checkpoint(a), y = read_checkpoint(b);
  EXPECT_EQ(x.state.step, y.state.step);
  int compared = 0;
  for (const auto& [name, tensor] : x.state.tensors) {
    if (name.rfind("model/", 0) && name.rfind("ema/", 0) && name.rfind("optimizer/", 0)) continue;
    const at::Tensor* other = y.state.find(name);
    if (!other) {
      ADD_FAILURE() << b << " lacks " << name;
      continue;
    }
    EXPECT_TRUE(tensor.equal(*other)) << name << " differs between " << a << " and " << b << " (max abs diff "
                                      << (tensor.to(at::kDouble) - other->to(at::kDouble)).abs().max().item<double>() << ")";
    ++compared;
  }
  return compared;
}

TEST(Hdf5File, WritesAndReadsDatasetsAttributesAndGroups) {
  TempDir dir;
  const std::string path = dir.path() + "/t.h5";
  {
    Hdf5File f = Hdf5File::create(path);
    const float w[6] = {1, 2, 3, 4, 5, 6.5f};
    const std::int64_t step = 42;
    const std::uint8_t bytes[3] = {0, 128, 255};
    f.write("model/blocks.0.w", Hdf5Type::F32, {2, 3}, w);
    f.write("state/trainer/step", Hdf5Type::I64, {}, &step);
    f.write("rng/cpu", Hdf5Type::U8, {3}, bytes);
    f.set_attribute("", "pipeline", std::string(R"({"name": "x"})"));
    f.set_attribute("", "format_version", std::int64_t{1});
    f.set_attribute("model", "scale", 0.5);
    f.close();
  }
  const Hdf5File f = Hdf5File::open_read(path);
  EXPECT_EQ(f.datasets(""), (std::vector<std::string>{"model/blocks.0.w", "rng/cpu", "state/trainer/step"}));
  EXPECT_EQ(f.datasets("model"), (std::vector<std::string>{"blocks.0.w"}));
  const auto info = f.info("model/blocks.0.w");
  EXPECT_EQ(info.type, Hdf5Type::F32);
  EXPECT_EQ(info.shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(f.read_f64("model/blocks.0.w"), (std::vector<double>{1, 2, 3, 4, 5, 6.5}));
  EXPECT_EQ(f.read_i64("state/trainer/step"), (std::vector<std::int64_t>{42}));
  EXPECT_EQ(f.read_i64("rng/cpu"), (std::vector<std::int64_t>{0, 128, 255}));
  EXPECT_EQ(f.string_attribute("", "pipeline"), R"({"name": "x"})");
  EXPECT_EQ(f.int_attribute("", "format_version"), 1);
  EXPECT_EQ(f.double_attribute("model", "scale"), 0.5);
  EXPECT_TRUE(f.exists("state/trainer"));
  EXPECT_FALSE(f.exists("state/nothing/here"));
  EXPECT_THROW(f.info("model/missing"), std::runtime_error);
}

TEST(Hdf5File, RefusesFilesThatAreNotHdf5) {
  TempDir dir;
  const std::string path = dir.write("fake.h5", "not an hdf5 file at all");
  try {
    Hdf5File::open_read(path);
    FAIL() << "opened a text file as HDF5";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fake.h5 is not a readable HDF5 file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_checkpoint(dir.path() + "/absent.h5"), std::runtime_error);
}

TEST(CheckpointFile, RoundTripsEveryPartOfATrainState) {
  TrainState s;
  s.reason = "step";
  s.node = "train";
  s.step = 7;
  s.epoch = 1;
  s.model_config = R"({"width": 8})";
  s.classes = {"cat", "dog"};
  s.tensors.emplace_back("model/w", at::rand({3, 4}));
  s.tensors.emplace_back("optimizer/w/step", at::scalar_tensor(7, at::kLong));
  s.tensors.emplace_back("rng/torch_cpu", at::randint(0, 255, {16}, at::kByte));
  s.counters["trainer/step"] = 7;
  s.values["trainer/loss_scale"] = 1024.5;
  s.positions["data"] = {1, 48};
  Metrics m;
  m.scope = "eval";
  m.step = 4;
  m.epoch = 0;
  m.values = {{"accuracy", 0.25}, {"loss", 2.0}};
  s.history.push_back(m);
  m.scope = "train";
  m.step = 2;
  m.values = {{"loss", 2.2}};
  s.history.push_back(m);
  TempDir dir;
  write_checkpoint(s, dir.path() + "/c.h5", R"({"name": "p"})");
  const CheckpointFile r = read_checkpoint(dir.path() + "/c.h5");
  EXPECT_EQ(r.pipeline_json, R"({"name": "p"})");
  EXPECT_EQ(r.state.reason, "step");
  EXPECT_EQ(r.state.step, 7u);
  EXPECT_EQ(r.state.epoch, 1u);
  EXPECT_EQ(r.state.classes, s.classes);
  EXPECT_EQ(r.state.model_config, s.model_config);
  ASSERT_EQ(r.state.tensors.size(), 3u);
  for (const auto& [name, tensor] : s.tensors) {
    ASSERT_NE(r.state.find(name), nullptr) << name;
    EXPECT_TRUE(r.state.find(name)->equal(tensor)) << name;
    EXPECT_EQ(r.state.find(name)->scalar_type(), tensor.scalar_type()) << name;
  }
  EXPECT_EQ(r.state.counter("trainer/step"), 7);
  EXPECT_EQ(r.state.value("trainer/loss_scale"), 1024.5);
  EXPECT_EQ(r.state.positions.at("data").epoch, 1u);
  EXPECT_EQ(r.state.positions.at("data").position, 48u);
  ASSERT_EQ(r.state.history.size(), 2u);
  EXPECT_EQ(r.state.history[0].scope, "eval");  // in the order they happened, across scopes
  EXPECT_EQ(r.state.history[0].values.at("accuracy"), 0.25);
  EXPECT_EQ(r.state.history[0].values.count("samples"), 0u);
  EXPECT_EQ(r.state.history[1].scope, "train");
}

TEST(Resume, FromMidEpochStepCheckpointsEndsBitIdentical) {
  TempDir dir;
  const std::string json = resume_pipeline();
  run_pipeline(json, dir.path() + "/full");
  const std::string full = dir.path() + "/full/checkpoints";
  const std::string final_file = step_file(full, 12);  // 64 images / 16 = 4 steps x 3 epochs
  ASSERT_TRUE(fs::exists(final_file));
  // Step 2: mid epoch 0. Step 4: the last batch of epoch 0, before its evaluation.
  // Step 9: mid epoch 2, after two evaluations.
  for (int step : {2, 4, 9}) {
    const std::string folder = dir.path() + "/resumed" + std::to_string(step);
    run_pipeline(json, folder, step_file(full, step));
    SCOPED_TRACE("resumed from step " + std::to_string(step));
    EXPECT_GT(expect_same_training_state(final_file, step_file(folder + "/checkpoints", 12)), 40);
    // The evaluations after the resume match too: the history is the uninterrupted run's.
    const auto a = read_checkpoint(final_file).state.history, b = read_checkpoint(step_file(folder + "/checkpoints", 12)).state.history;
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i].scope == "eval") {
        EXPECT_EQ(a[i].values, b[i].values) << a[i].describe();
      }
    }
  }
  // The evaluation's misclassified samples come out the same too.
  const std::string wrong = read_file(dir.path() + "/full/misclassified.json");
  EXPECT_NE(wrong.find("\"key\""), std::string::npos) << "nothing to compare";
  for (int step : {2, 4, 9})
    EXPECT_EQ(read_file(dir.path() + "/resumed" + std::to_string(step) + "/misclassified.json"), wrong) << step;
  // From the final checkpoint there is nothing left to do: the run ends cleanly.
  EXPECT_EQ(run_pipeline(json, dir.path() + "/after_end", final_file).reason, StopReason::Finished);
}

TEST(Resume, StepEvaluationsResumeBitIdentical) {
  // Evaluations every 3 steps besides epoch ends: the step-3 snapshot is taken with
  // that evaluation due, and the resumed run makes it first.
  TempDir dir;
  const std::string json = resume_pipeline(8, 3, R"(, "eval_every_steps": 3)");
  const std::vector<std::string> more_eval_epochs = {"nodes.test_data.params.epochs=8"};
  run_pipeline(json, dir.path() + "/full", "", more_eval_epochs);
  const std::string final_file = step_file(dir.path() + "/full/checkpoints", 12);
  for (int step : {3, 5}) {
    const std::string folder = dir.path() + "/resumed" + std::to_string(step);
    run_pipeline(json, folder, step_file(dir.path() + "/full/checkpoints", step), more_eval_epochs);
    SCOPED_TRACE("resumed from step " + std::to_string(step));
    EXPECT_GT(expect_same_training_state(final_file, step_file(folder + "/checkpoints", 12)), 40);
    const auto a = read_checkpoint(final_file).state.history, b = read_checkpoint(step_file(folder + "/checkpoints", 12)).state.history;
    int evals = 0;
    std::string both;
    for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i)
      both += (i < a.size() ? a[i].describe() : "-").substr(0, 60) + "  |  " + (i < b.size() ? b[i].describe() : "-").substr(0, 60) + "\n";
    SCOPED_TRACE(both);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].scope, b[i].scope);
      if (a[i].scope == "eval") {
        ++evals;
        EXPECT_EQ(a[i].step, b[i].step);
        EXPECT_EQ(a[i].values, b[i].values);
      }
    }
    EXPECT_EQ(evals, 6);  // steps 3, 4, 6, 8, 9, 12
  }
}

TEST(Resume, InterruptedMidAccumulationResumesBitIdentical) {
  // Accumulation 3: a stop between optimizer steps saves the accumulated gradients
  // with the state (the "stop" snapshot replaces the step file of the same step).
  TempDir dir;
  const std::string json = resume_pipeline(18, 2, R"(, "accumulation": 3)");
  run_pipeline(json, dir.path() + "/full");
  const std::string final_file = step_file(dir.path() + "/full/checkpoints", 6);  // 144 / 16 = 9 batches x 2 / 3
  ASSERT_TRUE(fs::exists(final_file));
  RunOptions options;
  options.run_folder = dir.path() + "/stopped";
  Pipeline stopped(describe(json), options);
  std::thread stopper([&] {
    const std::string first = step_file(options.run_folder + "/checkpoints", 2);
    for (int i = 0; i < 20000 && !fs::exists(first); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stopped.request_stop();
  });
  const RunReport report = stopped.run();
  stopper.join();
  ASSERT_EQ(report.reason, StopReason::Interrupted);
  const std::string last = newest_checkpoint(options.run_folder + "/checkpoints");
  const CheckpointFile saved = read_checkpoint(last);
  ASSERT_LT(saved.state.step, 6u) << "the run ended before the stop";
  std::cout << "stopped at step " << saved.state.step << " (" << saved.state.reason << "), "
            << saved.state.counter("trainer/micro") << " micro-batch(es) accumulated\n";
  run_pipeline(json, options.run_folder, last);
  EXPECT_GT(expect_same_training_state(final_file, step_file(options.run_folder + "/checkpoints", 6)), 40);
}

// Resumed in its own run folder, the run's TensorBoard curves show each step once:
// the resumed run marks where it takes over (see EventFileWriter::add_restart).
TEST(Resume, TensorBoardShowsEachStepOnceAfterAResume) {
  TempDir dir;
  std::string json = resume_pipeline();
  const std::string report = R"({"id": "report", "plugin": "report"})";
  json.replace(json.find(report), report.size(), report + R"(, {"id": "tb", "plugin": "tensorboard"})");
  const std::string edge = R"("train -> report.metrics")";
  json.replace(json.find(edge), edge.size(), edge + R"(, "train -> tb")");
  const std::string folder = dir.path() + "/run";
  run_pipeline(json, folder);
  run_pipeline(json, folder, step_file(folder + "/checkpoints", 5));
  const std::string cmd = source_dir() + "/.venv/bin/python " + source_dir() + "/tools/check_tensorboard_events.py " +
                          folder + "/tensorboard --unique --count Loss/train=6 --count Accuracy/val=3 > " + dir.path() +
                          "/log.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.path() + "/log.txt");
}

TEST(Resume, AnotherStageFailingSavesTheTrainStateAndTheRunResumesBitIdentical) {
  // A sink of the metrics fails on its 5th record (train 2, train 4, epoch 0, eval 0,
  // train 6): the train stage's state is consistent, so it is saved ("stop"), wherever
  // the train stage had got to when the failure reached it.
  TempDir dir;
  std::string json = resume_pipeline(8, 3, R"(, "save_every_steps": 0)");
  run_pipeline(json, dir.path() + "/full");
  const std::string final_file = step_file(dir.path() + "/full/checkpoints", 12);
  json.replace(json.find(R"({"id": "report", "plugin": "report"})"), std::string(R"({"id": "report", "plugin": "report"})").size(),
               R"({"id": "report", "plugin": "report"}, {"id": "fragile", "plugin": "test.fail_after", "params": {"after": 5}})");
  json.replace(json.find(R"("train -> report.metrics")"), std::string(R"("train -> report.metrics")").size(),
               R"("train -> report.metrics", "train -> fragile")");
  try {
    run_pipeline(json, dir.path() + "/failed");
    FAIL() << "the failing stage did not fail the run";
  } catch (const NodeError& e) {
    EXPECT_NE(std::string(e.what()).find("fragile"), std::string::npos) << e.what();
  }
  const std::string saved = newest_checkpoint(dir.path() + "/failed/checkpoints");
  ASSERT_FALSE(saved.empty());
  const CheckpointFile file = read_checkpoint(saved);
  EXPECT_EQ(file.state.reason, "stop");
  EXPECT_LT(file.state.step, 12u);
  EXPECT_GE(file.state.step, 6u);
  run_pipeline(resume_pipeline(8, 3, R"(, "save_every_steps": 0)"), dir.path() + "/failed", saved);
  EXPECT_GT(expect_same_training_state(final_file, step_file(dir.path() + "/failed/checkpoints", 12)), 40);
}

TEST(Resume, KilledWithSigkillWhileSavingLeavesLoadableCheckpointsAndResumesBitIdentical) {
  // kill -9 at several moments of a run that saves after every step (so it is often
  // in the middle of writing a file): every checkpoint left must load, and resuming
  // from the newest ends with the uninterrupted run's weights.
  TempDir dir;
  const std::string pipeline = dir.write("p.json", resume_pipeline(40, 4));  // 20 steps an epoch, 80 in all
  const auto full = run_flowrun({pipeline, "--run-dir", dir.path() + "/full"}, -1, SIGINT, 120);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  const std::string final_file = step_file(dir.path() + "/full/checkpoints", 80);
  ASSERT_TRUE(fs::exists(final_file));
  const std::string run = dir.path() + "/killed";
  int kills = 0;
  std::string newest;
  for (int delay_ms : {1200, 1700, 2200}) {
    std::vector<std::string> args = {pipeline, "--run-dir", run};
    if (!newest.empty()) args = {pipeline, "--resume", newest};
    const auto r = run_flowrun(args, delay_ms, SIGKILL, 120);
    if (r.exit_code == 0) break;  // finished before the kill
    ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "after " << delay_ms << " ms: " << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0);
    ++kills;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run + "/checkpoints", ec)) {
      if (e.path().extension() != ".h5") continue;  // a temporary left by the kill
      EXPECT_NO_THROW(read_checkpoint(e.path().string())) << e.path();
    }
    newest = newest_checkpoint(run + "/checkpoints");  // "" when killed before the first save
  }
  ASSERT_GE(kills, 1) << "every run finished before its kill";
  if (!fs::exists(step_file(run + "/checkpoints", 80))) {
    std::vector<std::string> args = {pipeline, "--run-dir", run};
    if (!newest.empty()) args = {pipeline, "--resume", newest};
    const auto r = run_flowrun(args, -1, SIGINT, 120);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_GT(expect_same_training_state(final_file, step_file(run + "/checkpoints", 80)), 40);
}

// A small tmpfs for as long as it lives, or the reason there is none (not root, no
// permission to mount in this container).
class SmallFilesystem {
 public:
  SmallFilesystem(const std::string& folder, const std::string& size) : folder_(folder) {
    fs::create_directories(folder);
    if (::geteuid() != 0) {
      why_not_ = "needs root to mount a small tmpfs";
    } else if (::mount("tmpfs", folder.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      why_not_ = std::string("cannot mount a tmpfs here: ") + std::strerror(errno);
    }
  }
  ~SmallFilesystem() {
    if (why_not_.empty()) ::umount2(folder_.c_str(), MNT_DETACH);
  }
  const std::string& why_not() const { return why_not_; }

 private:
  std::string folder_;
  std::string why_not_;
};

// A disk that fills up mid-run: the failed write is named, every checkpoint saved
// before it still loads, nothing half-written is left, and the process exits 1 (it used
// to die with SIGSEGV at exit inside HDF5's clean-up of the file the write left open).
TEST(Checkpoint, AFullDiskFailsTheRunByNameAndKeepsEarlierCheckpoints) {
  TempDir dir;
  const std::string pipeline = dir.write("p.json", resume_pipeline(16, 2));  // 8 steps an epoch, one file a step
  SmallFilesystem disk(dir.path() + "/disk", "5m");  // room for 2 or 3 checkpoints of about 1.6 MB
  if (!disk.why_not().empty()) GTEST_SKIP() << disk.why_not();
  const std::string run = dir.path() + "/disk/run";
  const auto r = run_flowrun({pipeline, "--run-dir", run}, -1, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 1) << r.err.substr(r.err.size() > 3000 ? r.err.size() - 3000 : 0);
  EXPECT_NE(r.err.find("could not save the checkpoint " + run + "/checkpoints/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("are intact"), std::string::npos) << r.err;
  int kept = 0;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
    EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << "a temporary was left: " << e.path();
    if (e.path().extension() != ".h5") continue;
    EXPECT_NO_THROW(read_checkpoint(e.path().string())) << e.path();
    ++kept;
  }
  EXPECT_GE(kept, 1) << "the disk was too small for even one checkpoint; the test needs a larger tmpfs";
}

// With one runtime thread (a 2-core machine's setting: the step gets both cores) TBB runs
// the newest task first, and the loader always has newer tasks than a sink: every
// snapshot used to be written after the last step. The checkpoint stage runs on a thread
// of its own and gets each snapshot as it is made: the first is written while steps
// remain (the trace's checkpoint slices start before its last train slice).
TEST(Checkpoint, WithOneRuntimeThreadSnapshotsAreWrittenWhileTrainingGoesOn) {
  TempDir dir;
  RunOptions options;
  options.run_folder = dir.path() + "/run";
  options.profile_path = dir.path() + "/trace.json";
  Pipeline p(describe(resume_pipeline(16, 2), {"threads=1", "nodes.train.params.save_every_steps=4"}), options);
  p.run();
  const auto trace = nlohmann::json::parse(read_file(options.profile_path));
  double first_save = -1, last_step = -1;
  int saves = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const double ts = e["ts"];
    if (e["name"] == "ckpt" && (first_save < 0 || ts < first_save)) first_save = ts;
    if (e["name"] == "ckpt") ++saves;
    if (e["name"] == "train") last_step = std::max(last_step, ts);
  }
  ASSERT_GT(saves, 3);
  EXPECT_LT(first_save, last_step) << "every snapshot was written after the last step";
}

TEST(Resume, CliResumeAutoTakesTheNewestCheckpointOfThePipelinesRuns) {
  // Run folders are runs/NAME-* under the working directory: give this test's pipeline a
  // name of its own, and clean up after.
  TempDir dir;
  std::string json = resume_pipeline(8, 1);
  json.replace(json.find("resume_test"), 11, "resume_auto_test");
  const std::string pipeline = dir.write("p.json", json);
  const std::string run = "runs/resume_auto_test-" + std::to_string(::getpid());
  auto r = run_flowrun({pipeline, "--run-dir", run, "--set", "nodes.train.params.save_every_steps=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(read_file(run + "/flowrun.log").find("pipeline 'resume_auto_test'"), std::string::npos) << "the run's log";
  std::filesystem::remove(run + "/checkpoints/ckpt-step00000004.h5");  // newest left: step 2
  r = run_flowrun({pipeline, "--resume", "auto"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("resuming from " + run + "/checkpoints/ckpt-step00000002.h5"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/ckpt-step00000004.h5")) << "continued in the same run folder";
  std::filesystem::remove_all(run);
}

// With --run-dir, auto looks in that folder only: not at a newer checkpoint of another
// run of the same pipeline; and an empty folder starts a fresh run, saying so.
TEST(Resume, CliResumeAutoWithRunDirLooksInThatFolderOnly) {
  TempDir dir;
  std::string json = resume_pipeline(8, 1);
  json.replace(json.find("resume_test"), 11, "resume_dir_test");
  const std::string pipeline = dir.write("p.json", json);
  const std::string mine = dir.path() + "/mine", other = "runs/resume_dir_test-" + std::to_string(::getpid());
  auto r = run_flowrun({pipeline, "--run-dir", mine, "--set", "nodes.train.params.save_every_steps=2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::filesystem::remove(mine + "/checkpoints/ckpt-step00000004.h5");  // newest left here: step 2
  r = run_flowrun({pipeline, "--run-dir", other, "--set", "nodes.train.params.save_every_steps=2"});  // a newer run
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_flowrun({pipeline, "--resume", "auto", "--run-dir", mine});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("resuming from " + mine + "/checkpoints/ckpt-step00000002.h5"), std::string::npos) << r.out;
  const std::string empty = dir.path() + "/empty";
  r = run_flowrun({pipeline, "--resume", "auto", "--run-dir", empty});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--resume auto: no checkpoint in " + empty + "/checkpoints/: starting a fresh run"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("resuming from"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(empty + "/checkpoints/ckpt-step00000004.h5")) << "the fresh run trained to the end";
  std::filesystem::remove_all(other);
}

TEST(Resume, CliResumeErrorsNameTheProblem) {
  TempDir dir;
  const std::string pipeline = dir.write("p.json", resume_pipeline(8, 1));
  auto r = run_flowrun({"--resume", "auto", pipeline});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no checkpoint under runs/resume_test-*/checkpoints/"), std::string::npos) << r.err;
  r = run_flowrun({pipeline, "--resume", dir.write("junk.h5", "junk")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("junk.h5 is not a readable HDF5 file"), std::string::npos) << r.err;
}

TEST(Checkpoint, KeepsTheLastKAndTheBest) {
  TempDir dir;
  run_pipeline(resume_pipeline(), dir.path() + "/run", "", {"nodes.ckpt.params.keep_last=2"});
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path() + "/run/checkpoints")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"best.h5", "ckpt-step00000011.h5", "ckpt-step00000012.h5"}));
  // best.h5 holds the evaluation with the highest accuracy so far.
  const CheckpointFile best = read_checkpoint(dir.path() + "/run/checkpoints/best.h5");
  const CheckpointFile last = read_checkpoint(dir.path() + "/run/checkpoints/ckpt-step00000012.h5");
  double best_accuracy = -1;
  for (const Metrics& m : last.state.history)
    if (m.scope == "eval") best_accuracy = std::max(best_accuracy, m.values.at("accuracy"));
  double saved_accuracy = -1;
  for (const Metrics& m : best.state.history)
    if (m.scope == "eval" && m.step == best.state.step) saved_accuracy = m.values.at("accuracy");
  EXPECT_EQ(saved_accuracy, best_accuracy);
  EXPECT_EQ(best.state.reason, "epoch");
}

TEST(EarlyStopping, EndsTheRunCleanlyWhenTheMetricStopsImproving) {
  // lr 0: nothing changes, so eval loss never improves; patience 2 ends the run after
  // the third evaluation of 10 epochs, normally (finish, final checkpoint, no error).
  TempDir dir;
  const RunReport report =
      run_pipeline(resume_pipeline(8, 10), dir.path() + "/run", "",
                   {"nodes.train.params.lr=0", "nodes.train.params.early_stopping_metric=loss",
                    "nodes.train.params.early_stopping_patience=2", "nodes.train.params.save_every_steps=0"});
  EXPECT_EQ(report.reason, StopReason::Finished);
  EXPECT_EQ(report.ended_by, "train");
  EXPECT_NE(report.ended_why.find("early stopping: eval loss has not fallen"), std::string::npos) << report.ended_why;
  const std::string last = newest_checkpoint(dir.path() + "/run/checkpoints");
  const CheckpointFile f = read_checkpoint(last);
  int evaluations = 0;
  for (const Metrics& m : f.state.history) evaluations += m.scope == "eval";
  EXPECT_EQ(evaluations, 3);
  EXPECT_EQ(f.state.step, 12u);  // 3 epochs of 4 steps, not 10
}

TEST(Checkpoint, ExportWritesTheCheckpointWeightsWithHuggingFaceNames) {
  TempDir dir;
  run_pipeline(resume_pipeline(8, 1), dir.path() + "/run");
  const std::string ckpt = step_file(dir.path() + "/run/checkpoints", 4);
  const auto r = run_flowrun({"export", ckpt, dir.path() + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("step 4"), std::string::npos) << r.out;
  const auto exported = read_as_timm(dir.path() + "/hf/model.safetensors");
  const CheckpointFile file = read_checkpoint(ckpt);
  int matched = 0;
  for (const auto& [name, tensor] : exported) {
    const at::Tensor* saved = file.state.find("model/" + name);
    ASSERT_NE(saved, nullptr) << name;
    EXPECT_TRUE(saved->equal(tensor)) << name;
    ++matched;
  }
  int model_tensors = 0;
  for (const auto& [name, tensor] : file.state.tensors) model_tensors += name.rfind("model/", 0) == 0;
  EXPECT_EQ(matched, model_tensors);
  EXPECT_EQ(matched, 32);  // 4 embedding + 2 x 12 per block + final norm and head
  EXPECT_NE(read_file(dir.path() + "/hf/config.json").find("\"airplane\""), std::string::npos);
  const auto ema = run_flowrun({"export", ckpt, dir.path() + "/hf_ema", "--ema"});
  EXPECT_EQ(ema.exit_code, 0) << ema.err;
  const auto bad = run_flowrun({"export", dir.path() + "/nothing.h5", dir.path() + "/x"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("nothing.h5"), std::string::npos) << bad.err;
}

TEST(Checkpoint, H5pyReadsItWithTheDocumentedNames) {
  TempDir dir;
  run_pipeline(resume_pipeline(8, 1), dir.path() + "/run");
  const std::string ckpt = step_file(dir.path() + "/run/checkpoints", 4);
  const std::string cmd = source_dir() + "/.venv/bin/python " + source_dir() + "/tools/check_checkpoint.py " + ckpt +
                          " > " + dir.path() + "/out.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << read_file(dir.path() + "/out.txt");
  EXPECT_NE(read_file(dir.path() + "/out.txt").find("ok: pipeline 'resume_test', step 4"), std::string::npos)
      << read_file(dir.path() + "/out.txt");
}

}  // namespace
}  // namespace flowrun::testing
