// Data-parallel building blocks: where a process sits (torchrun's and SLURM's variables),
// and real multi-process jobs on 127.0.0.1 through LocalLaunch: collectives, gradient
// averaging against the whole batch's gradient, and a lost rank named by the survivor.
#include <gtest/gtest.h>

#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "lib/distributed/local_launch.hpp"
#include "lib/distributed/placement.hpp"
#include "lib/distributed/process_group.hpp"
#include "support/test_util.hpp"

using namespace flowrun;
namespace fs = std::filesystem;

namespace {

ProcessPlacement placement_of(const std::map<std::string, std::string>& env) {
  return placement_from_environment([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs dp_probe MODE in `processes` ranks; returns the job's exit code, logs in `folder`.
int run_probe(const std::string& mode, int processes, const fs::path& folder, bool agent_store,
              const std::string& timeout_s = "20") {
  fs::create_directories(folder);
  LaunchPlan plan;
  plan.processes = processes;
  // A stopped rank ("hung") only goes with SIGKILL; otherwise the survivor gets time to
  // find the loss itself (it ignores the launcher's SIGTERM).
  plan.grace = std::chrono::seconds(mode == "hung" ? 1 : 20);
  const char* relocated = std::getenv("FLOWRUN_TEST_DP_PROBE");  // the device bundle's copy
  plan.command = {relocated && *relocated ? relocated : FLOWRUN_DP_PROBE, mode, timeout_s};
  plan.log_folder = folder.string();
  std::unique_ptr<RendezvousHost> host;
  if (agent_store) {
    host = std::make_unique<RendezvousHost>("127.0.0.1", 0, processes, std::chrono::seconds(30));
    plan.master_port = host->port();
    plan.agent_store = true;
  } else {
    plan.master_port = free_port();
  }
  LocalLaunch job(plan);
  job.start();
  return job.wait();
}

std::string logs(const fs::path& folder, int processes) {
  std::string text;
  for (int r = 0; r < processes; ++r)
    text += "--- rank " + std::to_string(r) + "\n" + read_text(folder / ("rank" + std::to_string(r) + ".log"));
  return text;
}

}  // namespace

TEST(DistributedPlacement, AloneWithoutLauncherVariables) {
  const ProcessPlacement p = placement_of({});
  EXPECT_FALSE(p.data_parallel());
  EXPECT_EQ(p.rank, 0);
  EXPECT_EQ(p.world_size, 1);
  EXPECT_EQ(p.launcher, "");
}

TEST(DistributedPlacement, ReadsTorchrunVariables) {
  const ProcessPlacement p = placement_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                          {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.1.2.3"},
                                          {"MASTER_PORT", "29400"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_TRUE(p.data_parallel());
  EXPECT_EQ(p.rank, 3);
  EXPECT_EQ(p.world_size, 4);
  EXPECT_EQ(p.local_rank, 1);
  EXPECT_EQ(p.local_world_size, 2);
  EXPECT_EQ(p.master_addr, "10.1.2.3");
  EXPECT_EQ(p.master_port, 29400);
  EXPECT_TRUE(p.agent_store);
  EXPECT_EQ(p.launcher, "torchrun");
  EXPECT_FALSE(placement_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_USE_AGENT_STORE", "False"}}).agent_store);
}

TEST(DistributedPlacement, ReadsSlurmVariablesWhenTorchrunsAreAbsent) {
  const ProcessPlacement p = placement_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                          {"SLURM_NTASKS_PER_NODE", "4"}, {"MASTER_ADDR", "node01"}});
  EXPECT_EQ(p.launcher, "slurm");
  EXPECT_EQ(p.rank, 5);
  EXPECT_EQ(p.world_size, 8);
  EXPECT_EQ(p.local_rank, 1);
  EXPECT_EQ(p.local_world_size, 4);
  EXPECT_EQ(p.master_addr, "node01");
  EXPECT_EQ(p.master_port, 29500);
  // torchrun's variables win inside a SLURM allocation (torchrun started by srun).
  EXPECT_EQ(placement_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"RANK", "1"}, {"WORLD_SIZE", "2"}}).world_size, 2);
}

TEST(DistributedPlacement, RefusesInconsistentVariablesNamingThem) {
  auto message = [](const std::map<std::string, std::string>& env) {
    try {
      placement_of(env);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"RANK", "0"}}).find("RANK is set but WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(message({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("rank 2 is outside a world of 2"), std::string::npos);
  EXPECT_NE(message({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x': expected a whole number"), std::string::npos);
  EXPECT_NE(message({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT='70000'"),
            std::string::npos);
  EXPECT_NE(message({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).find("MASTER_ADDR is not set"), std::string::npos);
}

TEST(Distributed, CollectivesAcrossThreeProcessesWithRankZeroHostingTheStore) {
  const fs::path folder = fs::path(::testing::TempDir()) / "dp_collectives";
  const int code = run_probe("collectives", 3, folder, false);
  EXPECT_EQ(code, 0) << logs(folder, 3);
  EXPECT_NE(read_text(folder / "rank2.log").find("ok   gathered text in rank order"), std::string::npos) << logs(folder, 3);
}

TEST(Distributed, AveragedGradientsEqualTheWholeBatchsWithTheLauncherHostingTheStore) {
  const fs::path folder = fs::path(::testing::TempDir()) / "dp_gradients";
  const int code = run_probe("gradients", 2, folder, true);
  EXPECT_EQ(code, 0) << logs(folder, 2);
  EXPECT_NE(read_text(folder / "rank1.log").find("ok   averaged gradients equal the whole batch's (accumulation 2, step 1)"),
            std::string::npos)
      << logs(folder, 2);
}

TEST(Distributed, ALostRankIsNamedBySurvivorsAndEndsTheJob) {
  const fs::path folder = fs::path(::testing::TempDir()) / "dp_lost";
  const auto start = std::chrono::steady_clock::now();
  const int code = run_probe("lost", 2, folder, true);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(code, 128 + SIGKILL) << "the job's code is the killed rank's\n" << logs(folder, 2);
  const std::string rank0 = read_text(folder / "rank0.log");
  EXPECT_NE(rank0.find("ok   the error names rank 1"), std::string::npos) << logs(folder, 2);
  EXPECT_LT(seconds, 20.0) << "well inside the 20 s collective timeout: a lost peer is seen at once";
}

TEST(Distributed, AHungRankFailsTheCollectiveAfterTheTimeoutNamingIt) {
  const fs::path folder = fs::path(::testing::TempDir()) / "dp_hung";
  const auto start = std::chrono::steady_clock::now();
  const int code = run_probe("hung", 2, folder, true, "4");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(code, 3) << "rank 0 found the failure (exit 3), then the launcher killed the stopped rank\n"
                     << logs(folder, 2);
  const std::string rank0 = read_text(folder / "rank0.log");
  EXPECT_NE(rank0.find("ok   the error names rank 1"), std::string::npos) << logs(folder, 2);
  EXPECT_NE(rank0.find("collective timeout 4 s"), std::string::npos) << logs(folder, 2);
  EXPECT_GT(seconds, 4.0) << "a live but silent rank is waited for until the timeout";
  EXPECT_LT(seconds, 15.0) << "the timeout, the 3 s roll call, the 1 s grace and start-up";
}

TEST(Distributed, LauncherReportsEachRanksEndAndStopsTheRestAfterAFailure) {
  LaunchPlan plan;
  plan.processes = 2;
  plan.command = {"/bin/sh", "-c", "if [ \"$RANK\" = 1 ]; then exit 3; fi; sleep 30"};
  plan.grace = std::chrono::milliseconds(2000);
  LocalLaunch job(plan);
  job.start();
  std::vector<std::string> events;
  const auto start = std::chrono::steady_clock::now();
  const int code = job.wait([&](const std::string& line) { events.push_back(line); });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(job.first_failed_rank(), 1);
  ASSERT_GE(events.size(), 3u);
  EXPECT_NE(events[0].find("rank 1 (pid"), std::string::npos);
  EXPECT_NE(events[0].find("exited with code 3"), std::string::npos);
  EXPECT_NE(events[1].find("stopping the other ranks (SIGTERM)"), std::string::npos);
  EXPECT_NE(events[2].find("was killed by SIGTERM"), std::string::npos);
}
