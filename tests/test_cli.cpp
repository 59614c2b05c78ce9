// The command line as a user meets it: exit codes, located error messages,
// signals, the plugin listing, and the generated docs being current.
#include <gtest/gtest.h>

#include <filesystem>

#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "expected '" << fragment << "' in:\n" << text;
}

const char* const kGood = R"({
  "name": "cli", "seed": 3,
  "nodes": [
    {"id": "src", "plugin": "counter_source", "params": {"count": 100}},
    {"id": "work", "plugin": "identity"},
    {"id": "sink", "plugin": "collect"}
  ],
  "edges": ["src -> work -> sink"]
})";

TEST(Cli, VersionAndHelp) {
  auto r = run_flowrun({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  expect_contains(r.out, "flowrun 0.");
  expect_contains(r.out, "LibTorch 2.");
  expect_contains(r.out, "CUDA devices usable here: ");  // the device check's first look at the GPU
  r = run_flowrun({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  expect_contains(r.out, "Exit codes:");
  expect_contains(r.out, "--set PATH=VALUE");
  for (const char* command : {"run", "validate", "graph", "plugins", "ablate", "bench"}) {
    r = run_flowrun({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    expect_contains(r.out, std::string("flowrun ") + command);
  }
  r = run_flowrun({"--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "unknown option '--bogus'");
  EXPECT_EQ(run_flowrun({}).exit_code, 2);
  r = run_flowrun({"run", "--help"});
  expect_contains(r.out, "--resume CHECKPOINT|auto");
  expect_contains(r.out, "Exit codes: 0 finished");
}

// Commands that do not exist (yet) are refused, not run as a pipeline or answered with
// the general help; a misspelt command or option gets a suggestion.
TEST(Cli, UnknownCommandsAndOptionsExitTwoWithADidYouMean) {
  for (const char* command : {"train", "benchmark"}) {
    auto r = run_flowrun({command, "--help"});
    EXPECT_EQ(r.exit_code, 2) << command;
    expect_contains(r.err, std::string("unknown command '") + command + "'");
  }
  auto r = run_flowrun({"validat", "p.json"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "did you mean 'validate'");
  r = run_flowrun({"validate", source_dir() + "/pipelines/runtime_demo.json", "--sett", "seed=1"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "unknown option '--sett' for validate (did you mean '--set'?)");
  // launch checks its own options (those before PIPELINE.json); the rest are run's.
  r = run_flowrun({"launch", "--nprocs", "2", "p.json"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "unknown option '--nprocs' for launch (did you mean '--nproc'?)");
  r = run_flowrun({"launch", "--nproc", "2"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "launch: no PIPELINE.json to run");
  r = run_flowrun({"export", "only_one.h5"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "OUT_FOLDER is required");
}

TEST(Cli, PluginsListAndDetails) {
  auto r = run_flowrun({"plugins"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* name : {"counter_source", "identity", "collect"}) expect_contains(r.out, name);
  r = run_flowrun({"plugins", "identity"});
  EXPECT_EQ(r.exit_code, 0);
  expect_contains(r.out, "Input ports:");
  expect_contains(r.out, "drop_probability  number, default 0, [0, 1]");
  r = run_flowrun({"plugins", "identiy"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "did you mean 'identity'");
}

TEST(Cli, ValidateAcceptsAndRefusesWithLocations) {
  TempDir dir;
  auto r = run_flowrun({"validate", dir.write("good.json", kGood)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_contains(r.out, "ok (3 nodes, 2 edges)");

  const std::string bad = dir.write("bad.json", R"({"name": "cli", "nodes": [
    {"id": "src", "plugin": "counter_source", "params": {"count": -5}},
    {"id": "sink", "plugin": "colect"}], "edges": ["src -> sink"]})");
  r = run_flowrun({"validate", bad});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, bad + ":/nodes/0/params/count: expected integer in >= 0, got -5");
  expect_contains(r.err, bad + ":/nodes/1/plugin: unknown plugin 'colect' (did you mean 'collect'?)");

  r = run_flowrun({"validate", dir.write("broken.json", "{\n  \"name\": \"x\"\n  \"nodes\": []\n}")});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "malformed JSON at line 3, column 9");

  r = run_flowrun({"validate", dir.path() + "/missing.json"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, "cannot open the description file");

  r = run_flowrun({"validate", dir.write("gpu.json", kGood), "--set", "device=cuda:99"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, ":/device: device \"cuda:99\" was asked for");

  r = run_flowrun({"validate", dir.write("good2.json", kGood), "--set", "nodes.work.params.drop_probability=2"});
  EXPECT_EQ(r.exit_code, 2);
  expect_contains(r.err, ":/nodes/1/params/drop_probability: expected number in [0, 1], got 2");
}

TEST(Cli, RunWritesNothingWhenTheDescriptionIsInvalid) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  const std::string bad = dir.write("bad.json", R"({"name": "cli", "nodes": [
    {"id": "src", "plugin": "counter_source"}, {"id": "sink", "plugin": "collect", "params": {"path": ")" + out +
                                                    R"("}}, {"id": "x", "plugin": "identity"}], "edges": ["src -> sink"]})");
  const auto r = run_flowrun({bad});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST(Cli, RunSucceedsAndAFailingStageExitsOneNamingTheNode) {
  TempDir dir;
  const std::string good = dir.write("good.json", kGood);
  auto r = run_flowrun({good, "--set", "nodes.sink.params.path=" + dir.path() + "/out.jsonl"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_contains(r.out, "run finished");
  const std::string written = read_file(dir.path() + "/out.jsonl");
  EXPECT_EQ(std::count(written.begin(), written.end(), '\n'), 101);  // 100 items and the epoch end

  r = run_flowrun({good, "--set", "nodes.work.params.fail_at=42"});
  EXPECT_EQ(r.exit_code, 1);
  expect_contains(r.err, "node 'work' (plugin identity): fail_at is 42: failing on purpose at item 42");

  r = run_flowrun({good, "--set", "nodes.work.params.fail_at_start=true"});
  EXPECT_EQ(r.exit_code, 1);
  expect_contains(r.err, "node 'work' (plugin identity): failed to start");
}

void expect_clean_stop(int signal, int expected_exit) {
  TempDir dir;
  const std::string out = dir.path() + "/out.jsonl";
  const std::string slow = dir.write("slow.json", R"({"name": "slow", "nodes": [
    {"id": "src", "plugin": "counter_source", "params": {"count": 100000000}},
    {"id": "work", "plugin": "identity", "params": {"sleep_ms": 1}},
    {"id": "sink", "plugin": "collect", "params": {"path": ")" + out + R"("}}],
    "edges": ["src -> work -> sink"]})");
  const auto r = run_flowrun({slow}, /*signal_after_ms=*/1200, signal, /*timeout_s=*/30);
  EXPECT_EQ(r.exit_code, expected_exit) << r.err;
  EXPECT_LT(r.seconds, 10.0);
  expect_contains(r.err, "stopping");
  expect_contains(r.out, "run interrupted");
  // The sink got its stop event and saved what it had received.
  EXPECT_TRUE(std::filesystem::exists(out));
  expect_contains(read_file(out), "\"signal\":\"data\"");
}

TEST(Cli, SigintStopsCleanlyWithExit130) { expect_clean_stop(SIGINT, 130); }
TEST(Cli, SigtermStopsCleanlyWithExit143) { expect_clean_stop(SIGTERM, 143); }

TEST(Cli, GraphPrintsDotWithKinds) {
  TempDir dir;
  const auto r = run_flowrun({"graph", dir.write("good.json", kGood)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_contains(r.out, "digraph \"cli\"");
  expect_contains(r.out, "\"src\" [label=\"src\\ncounter_source\", shape=house]");
  expect_contains(r.out, "\"src\" -> \"work\" [label=\"number\"]");
}

TEST(Cli, ShippedPipelinesValidate) {
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_dir() + "/pipelines")) {
    if (entry.path().extension() != ".json") continue;
    ++seen;
    const auto r = run_flowrun({"validate", entry.path().string()});
    EXPECT_EQ(r.exit_code, 0) << entry.path() << "\n" << r.err;
  }
  EXPECT_GT(seen, 0);
}

TEST(Cli, PluginReferenceDocIsCurrent) {
  const auto r = run_flowrun({"plugins", "--markdown"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(read_file(source_dir() + "/docs/plugins.md"), r.out)
      << "docs/plugins.md is stale: regenerate it with `cmake --build build --target docs`";
}

}  // namespace
}  // namespace flowrun::testing

namespace flowrun::testing {
namespace {

// The main command as the README runs it, shrunk to seconds: it trains, evaluates
// and ends with the result line.
TEST(Cli, QuickstartTrainsAndPrintsTheTestAccuracy) {
  auto r = run_flowrun({source_dir() + "/pipelines/quickstart.json", "--set", "nodes.train_data.params.per_class_limit=26",
                        "--set", "nodes.train_data.params.epochs=2", "--set", "nodes.test_data.params.per_class_limit=10",
                        "--set", "nodes.test_data.params.epochs=2", "--set", "nodes.train.params.log_every=1",
                        "--set", "nodes.train_data.params.paths=[\"" + source_dir() + "/../shared/data/cifar10-jpeg.tar\"]",
                        "--set", "nodes.test_data.params.paths=[\"" + source_dir() + "/../shared/data/cifar10-jpeg.tar\"]"},
                       -1, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string log = r.out + r.err;
  expect_contains(log, "[train] 4 optimizer steps (batch 128 x accumulation 1)");
  expect_contains(log, "[eval] eval after epoch 1: loss ");
  expect_contains(log, "[train] result: accuracy ");
  expect_contains(log, " on 100 eval samples after 2 evaluation(s), 4 optimizer steps");
}

}  // namespace
}  // namespace flowrun::testing
