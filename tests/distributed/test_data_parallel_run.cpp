// Data-parallel runs of the quickstart on the real CIFAR-10 JPEGs, through the flowrun
// binary as users start them (flowrun launch): 2 ranks of batch 32 against 1 process
// of batch 64, exact resume from a 2-rank checkpoint, a killed rank, and Ctrl-C.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "lib/distributed/local_launch.hpp"
#include "lib/distributed/process_group.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

// 640 training samples (10 steps of global batch 64 per epoch), 200 to evaluate; 4 epochs
// unless `epochs` says otherwise. The label check lists samples wrong in most epochs with
// >= 50% confidence (lr 5e-3 makes 3 on this recipe).
std::vector<std::string> small_quickstart(const std::string& run_dir, int batch_size, int epochs = 4) {
  return {source_dir() + "/pipelines/quickstart.json",
          "--run-dir", run_dir,
          "--set", "nodes.train_data.params.paths=[\"" + source_dir() + "/../shared/data/cifar10-jpeg.tar\"]",
          "--set", "nodes.test_data.params.paths=[\"" + source_dir() + "/../shared/data/cifar10-jpeg.tar\"]",
          "--set", "nodes.train_data.params.per_class_limit=64",
          "--set", "nodes.train_data.params.epochs=" + std::to_string(epochs),
          "--set", "nodes.test_data.params.per_class_limit=20",
          "--set", "nodes.test_data.params.epochs=" + std::to_string(epochs),
          "--set", "nodes.train.params.lr=5e-3",
          "--set", "nodes.train.params.label_error_confidence=0.5",
          "--set", "nodes.batch.params.batch_size=" + std::to_string(batch_size),
          "--set", "nodes.train.params.log_every=1",
          "--set", "nodes.train.params.save_every_steps=5",
          "--set", "nodes.train.params.threads=1",
          "--set", "nodes.checkpoint.params.keep_last=0",
          "--dist-timeout", "60"};
}

std::vector<std::string> launch(int ranks, const std::vector<std::string>& run_args,
                                const std::vector<std::string>& launch_args = {}) {
  std::vector<std::string> args = {"launch", "--nproc", std::to_string(ranks)};
  args.insert(args.end(), launch_args.begin(), launch_args.end());
  args.insert(args.end(), run_args.begin(), run_args.end());
  return args;
}

// metrics.jsonl records by (scope, step).
std::map<std::pair<std::string, long>, nlohmann::json> records(const std::string& run_dir) {
  std::map<std::pair<std::string, long>, nlohmann::json> out;
  std::istringstream lines(read_file(run_dir + "/metrics.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out[{j["scope"].get<std::string>(), j["step"].get<long>()}] = j;
  }
  return out;
}

bool has_cifar() { return fs::exists(source_dir() + "/../shared/data/cifar10-jpeg.tar"); }

class DataParallelRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_cifar()) GTEST_SKIP() << "../shared/data/cifar10-jpeg.tar is missing";
  }
  TempDir dir_;
};

TEST_F(DataParallelRun, TwoRanksOfBatch32FollowOneProcessOfBatch64AndResumeExactly) {
  const std::string alone = dir_.path() + "/alone", ranks = dir_.path() + "/ranks", logs = dir_.path() + "/logs";
  fs::create_directories(logs);
  const CommandResult a = run_flowrun(small_quickstart(alone, 64), -1, SIGINT, 120);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const CommandResult b = run_flowrun(launch(2, small_quickstart(ranks, 32), {"--log-dir", logs}), -1, SIGINT, 120);
  ASSERT_EQ(b.exit_code, 0) << b.err << read_file(logs + "/rank0.log") << read_file(logs + "/rank1.log");
  EXPECT_NE(read_file(logs + "/rank0.log").find("global batch 64 = batch 32 x accumulation 1 x 2 ranks"), std::string::npos);

  // The same 20 steps: the loss and gradient norm of every step, within float rounding
  // (the all-reduce adds in another order), and the same evaluations.
  const auto ra = records(alone), rb = records(ranks);
  int train_steps = 0, evaluations = 0;
  for (const auto& [key, ja] : ra) {
    if (key.first != "train" && key.first != "eval") continue;
    ASSERT_TRUE(rb.count(key)) << key.first << " step " << key.second << " missing in the 2-rank run";
    const auto& jb = rb.at(key);
    const double la = ja["loss"], lb = jb["loss"];
    EXPECT_NEAR(la, lb, 1e-5 * std::abs(la)) << key.first << " step " << key.second;
    EXPECT_EQ(ja["accuracy"], jb["accuracy"]) << key.first << " step " << key.second;
    if (key.first == "train") {
      ++train_steps;
      EXPECT_NEAR(ja["grad_norm"].get<double>(), jb["grad_norm"].get<double>(), 1e-3 * ja["grad_norm"].get<double>());
    } else {
      ++evaluations;
      EXPECT_EQ(jb["samples"], 200.0) << "every evaluation sample, once, over both ranks";
      EXPECT_EQ(ja["macro_f1"], jb["macro_f1"]);
    }
  }
  EXPECT_EQ(train_steps, 40);
  EXPECT_EQ(evaluations, 4);
  // The worst misclassified samples of the whole split, pooled from both ranks' shares.
  const auto worst_a = nlohmann::json::parse(read_file(alone + "/misclassified.json"))["samples"];
  const auto worst_b = nlohmann::json::parse(read_file(ranks + "/misclassified.json"))["samples"];
  ASSERT_EQ(worst_a.size(), worst_b.size());
  ASSERT_GT(worst_a.size(), 10u);
  for (std::size_t i = 0; i < worst_a.size(); ++i) {
    EXPECT_EQ(worst_a[i]["key"], worst_b[i]["key"]) << i;
    EXPECT_NEAR(worst_a[i]["loss"].get<double>(), worst_b[i]["loss"].get<double>(), 1e-4) << i;
  }

  // Only rank 0 writes: one TensorBoard event file, no save by rank 1.
  int event_files = 0;
  for (const auto& e : fs::directory_iterator(ranks + "/tensorboard")) event_files += e.is_regular_file();
  EXPECT_EQ(event_files, 1);
  EXPECT_EQ(read_file(logs + "/rank1.log").find("saved"), std::string::npos) << read_file(logs + "/rank1.log");
  EXPECT_TRUE(fs::exists(ranks + "/checkpoints/ckpt-step00000010.h5"));

  // The label check over the training data: each rank counts its own sightings, the last
  // epoch decides on the sums, the suspects of both ranks are pooled: the single process's list.
  auto suspects = [](const std::string& run) {
    std::vector<std::string> keys;
    const auto file = nlohmann::json::parse(read_file(run + "/label_errors.json"));
    for (const auto& s : file["samples"]) keys.push_back(s["key"]);
    return keys;
  };
  ASSERT_FALSE(suspects(alone).empty()) << "the recipe should leave a suspect or more";
  EXPECT_EQ(suspects(alone), suspects(ranks));

  // Resumed from step 10 with 2 ranks: steps 11-40 are the uninterrupted run's, bit for bit,
  // and the label check's counts, summed into the checkpoint, give the same suspects.
  const std::string resumed = dir_.path() + "/resumed";
  std::vector<std::string> resume_args = small_quickstart(resumed, 32);
  resume_args.insert(resume_args.end(), {"--resume", ranks + "/checkpoints/ckpt-step00000010.h5"});
  const CommandResult c = run_flowrun(launch(2, resume_args), -1, SIGINT, 120);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  const auto rc = records(resumed);
  int compared = 0;
  for (const auto& [key, jc] : rc) {
    if (key.first != "train" || key.second <= 10) continue;
    EXPECT_EQ(jc["loss"], rb.at(key)["loss"]) << "step " << key.second;
    ++compared;
  }
  EXPECT_EQ(compared, 30);
  EXPECT_EQ(rc.at({"eval", 40})["loss"], rb.at({"eval", 40})["loss"]);
  EXPECT_EQ(suspects(resumed), suspects(ranks));

  // Another number of ranks is refused, saying why.
  std::vector<std::string> alone_resume = small_quickstart(dir_.path() + "/alone_resumed", 64);
  alone_resume.insert(alone_resume.end(), {"--resume", ranks + "/checkpoints/ckpt-step00000010.h5"});
  const CommandResult d = run_flowrun(alone_resume, -1, SIGINT, 60);
  EXPECT_EQ(d.exit_code, 1);
  EXPECT_NE(d.err.find("was saved by a job of 2 rank(s); this one has 1"), std::string::npos) << d.err;
}

// torchrun (the PyTorch wheel's, in the project's virtual environment) starts the same job:
// its elastic agent hosts the store, every rank connects as a client.
TEST_F(DataParallelRun, TorchrunStartsTheSameJobAsFlowrunLaunch) {
  const std::string torchrun = source_dir() + "/.venv/bin/torchrun";
  if (!fs::exists(torchrun)) GTEST_SKIP() << torchrun << " is missing (scripts/setup.sh installs it)";
  std::vector<std::string> args = small_quickstart(dir_.path() + "/launched", 32, 1);
  const CommandResult launched = run_flowrun(launch(2, args), -1, SIGINT, 120);
  ASSERT_EQ(launched.exit_code, 0) << launched.err;
  args[2] = dir_.path() + "/torchrun";  // --run-dir
  std::string command = torchrun + " --nproc-per-node 2 --master-port " + std::to_string(free_port()) +
                        " --no-python " + flowrun_binary();
  for (const std::string& a : args) command += " '" + a + "'";
  command += " > " + dir_.path() + "/torchrun.log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(dir_.path() + "/torchrun.log");
  const std::string log = read_file(dir_.path() + "/torchrun.log");
  EXPECT_NE(log.find("(hosted by the launcher), from torchrun's variables"), std::string::npos) << log;
  const auto a = records(dir_.path() + "/launched"), b = records(dir_.path() + "/torchrun");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, ja] : a) {
    if (key.first == "train" || key.first == "eval") EXPECT_EQ(ja["loss"], b.at(key)["loss"]) << key.first << " " << key.second;
  }
}

TEST_F(DataParallelRun, AKilledRankEndsTheJobAndTheSurvivorNamesIt) {
  // Long enough to be killed mid-training: 5000 samples, batch 32.
  std::vector<std::string> run_args = small_quickstart(dir_.path() + "/run", 32);
  run_args.insert(run_args.end(), {"--set", "nodes.train_data.params.per_class_limit=500", "--log-level", "info"});
  RendezvousHost host("127.0.0.1", 0, 2, std::chrono::seconds(30));
  LaunchPlan plan;
  plan.processes = 2;
  plan.command = {flowrun_binary(), "run"};
  plan.command.insert(plan.command.end(), run_args.begin(), run_args.end());
  plan.master_port = host.port();
  plan.agent_store = true;
  plan.log_folder = dir_.path();
  plan.grace = std::chrono::seconds(20);
  LocalLaunch job(plan);
  job.start();
  // Kill rank 1 once it trains.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_file(dir_.path() + "/rank1.log").find("step 3/") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(job.outcomes()[1].pid, SIGKILL);
  const int code = job.wait();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_EQ(code, 128 + SIGKILL);
  EXPECT_EQ(job.first_failed_rank(), 1);
  const std::string rank0 = read_file(dir_.path() + "/rank0.log");
  EXPECT_NE(rank0.find("rank 1 did not answer within 3 s (lost)"), std::string::npos) << rank0;
  EXPECT_NE(job.outcomes()[0].exit_code, 0);
  EXPECT_LT(seconds, 15.0) << "noticed at once, well inside the 60 s collective timeout";
}

TEST_F(DataParallelRun, CtrlCOnTheLauncherStopsEveryRankAfterTheSameStepWithACheckpoint) {
  std::vector<std::string> run_args = small_quickstart(dir_.path() + "/run", 32);
  run_args.insert(run_args.end(), {"--set", "nodes.train_data.params.per_class_limit=500"});
  const CommandResult r = run_flowrun(launch(2, run_args), 6000, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 130) << r.err;
  const std::string all = r.out + r.err;
  EXPECT_NE(all.find("every rank stopped as asked"), std::string::npos) << all;
  const auto at = all.find("was asked to stop (SIGINT/SIGTERM): every rank stops after step ");
  ASSERT_NE(at, std::string::npos) << all;
  const long step = std::stol(all.substr(at + std::string("was asked to stop (SIGINT/SIGTERM): every rank stops after step ").size()));
  ASSERT_GT(step, 0) << "signalled before the first step: raise the delay";
  char name[64];
  std::snprintf(name, sizeof name, "/run/checkpoints/ckpt-step%08ld.h5", step);
  EXPECT_TRUE(fs::exists(dir_.path() + name)) << name;
}

}  // namespace
}  // namespace flowrun::testing
