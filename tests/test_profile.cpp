// The runtime's self-measurement: per-node call counts and latency percentiles, the
// time serial stages waited, queue depths, and the --profile trace checked against the
// rules of the Chrome trace-event format that Perfetto enforces (named tracks, complete
// events that nest properly on each track, numeric counters).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "../graph/src/profiler.hpp"
#include "../graph/src/trace_viewer.hpp"
#include "flowrun/pipeline.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

using nlohmann::json;

const char* const kPipeline = R"({
  "name": "profiled", "seed": 2, "prefetch": 64, "threads": 2,
  "nodes": [
    {"id": "src", "plugin": "counter_source", "params": {"count": 600, "epochs": 2}},
    {"id": "slow", "plugin": "test.random_tag", "params": {"jitter_us": 200}},
    {"id": "pass", "plugin": "identity"},
    {"id": "group", "plugin": "test.group", "params": {"size": 5}},
    {"id": "sink", "plugin": "collect"}
  ],
  "edges": ["src -> slow -> pass -> group -> sink"]
})";

TEST(Profile, LatencyHistogramQuantilesAreWithinABucket) {
  profiling::LatencyHistogram h;
  EXPECT_EQ(h.quantile(0.5), 0.0);
  for (int i = 1; i <= 1000; ++i) h.add(static_cast<std::uint64_t>(i) * 1000);  // 1 us .. 1 ms, uniform
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_NEAR(h.quantile(0.5), 500e-6, 0.1 * 500e-6);
  EXPECT_NEAR(h.quantile(0.99), 990e-6, 0.1 * 990e-6);
  EXPECT_LE(h.quantile(0.1), h.quantile(0.9));
}

TEST(Profile, ReportHasCallsPercentilesWaitsAndQueues) {
  Pipeline pipeline(describe(kPipeline));
  const RunReport report = pipeline.run();
  std::map<std::string, NodeStats> by_id;
  for (const NodeStats& n : report.nodes) by_id[n.id] = n;
  EXPECT_EQ(by_id["slow"].calls, 1200u);  // a map stage: one call per item
  EXPECT_GE(by_id["slow"].p50_s, 50e-6);  // a random sleep of up to 200 us per item
  EXPECT_GE(by_id["slow"].p99_s, 150e-6);
  EXPECT_LE(by_id["slow"].p50_s, by_id["slow"].p99_s);
  EXPECT_GT(by_id["group"].active_ns, 0u);
  EXPECT_LE(by_id["group"].busy_ns, by_id["group"].active_ns);  // a serial stage: busy within its span
  EXPECT_GE(by_id["group"].max_queued, 1);
  EXPECT_GT(by_id["src"].calls, 0u);
}

// Perfetto's rules, as its JSON importer applies them: every track (tid) used by a
// slice is named; a slice starts at or after the start of the one before it on its
// track and either ends before the next begins or contains it entirely.
void expect_valid_trace(const json& trace, const std::vector<std::string>& expected_names, bool group_queue = true) {
  ASSERT_TRUE(trace.contains("traceEvents"));
  std::map<int, std::string> thread_names;
  std::map<int, std::vector<std::pair<double, double>>> slices;  // tid -> (ts, end)
  std::map<std::string, int> names;
  std::map<std::string, std::vector<double>> counters;
  bool process_named = false;
  for (const json& e : trace["traceEvents"]) {
    const std::string ph = e.at("ph");
    ASSERT_TRUE(ph == "M" || ph == "X" || ph == "C") << e.dump();
    ASSERT_EQ(e.at("pid"), 1);
    if (ph == "M") {
      if (e.at("name") == "process_name") process_named = true;
      if (e.at("name") == "thread_name") thread_names[e.at("tid")] = e.at("args").at("name");
    } else if (ph == "X") {
      const double ts = e.at("ts"), dur = e.at("dur");
      ASSERT_GE(ts, 0.0);
      ASSERT_GE(dur, 0.0);
      slices[e.at("tid")].emplace_back(ts, ts + dur);
      ++names[e.at("name")];
      ASSERT_TRUE(e.at("args").at("items").is_number_unsigned());
    } else {
      ASSERT_TRUE(e.at("args").at("value").is_number()) << e.dump();
      counters[e.at("name")].push_back(e.at("args").at("value"));
    }
  }
  EXPECT_TRUE(process_named);
  for (auto& [tid, list] : slices) {
    EXPECT_TRUE(thread_names.count(tid)) << "track " << tid << " has slices but no thread_name";
    std::vector<double> open_ends;  // the slices containing the current one
    double last_start = -1;
    for (const auto& [ts, end] : list) {
      ASSERT_GE(ts, last_start) << "slices out of order on track " << tid;
      last_start = ts;
      while (!open_ends.empty() && open_ends.back() <= ts) open_ends.pop_back();
      if (!open_ends.empty()) {
        ASSERT_LE(end, open_ends.back() + 1e-3) << "overlapping slices on track " << tid << " at " << ts;
      }
      open_ends.push_back(end);
    }
  }
  for (const std::string& name : expected_names) EXPECT_GT(names[name], 0) << "no slice named " << name;
  ASSERT_TRUE(counters.count("in flight: src"));
  EXPECT_LE(*std::max_element(counters["in flight: src"].begin(), counters["in flight: src"].end()), 64.0);
  EXPECT_GE(*std::min_element(counters["in flight: src"].begin(), counters["in flight: src"].end()), 0.0);
  if (group_queue) ASSERT_TRUE(counters.count("queued: group"));
  ASSERT_TRUE(counters.count("queued: sink"));
}

TEST(Profile, TraceFollowsTheTraceEventRules) {
  TempDir dir;
  for (int threads : {1, 2, 4}) {
    SCOPED_TRACE(threads);
    RunOptions options;
    options.profile_path = dir.path() + "/trace.json";
    Pipeline pipeline(describe(kPipeline, {"threads=" + std::to_string(threads)}), options);
    pipeline.run();
    const json trace = json::parse(read_file(options.profile_path));
    // slow and pass run as one map chain: one slice per packet for both. Each stage's
    // start() is a slice of its own.
    expect_valid_trace(trace, {"src", "slow > pass", "group", "sink", "start: src", "start: slow", "start: sink"});
  }
}

TEST(Profile, StartingTheStagesIsTimedApart) {
  Pipeline pipeline(describe(kPipeline));
  const RunReport report = pipeline.run();
  EXPECT_GT(report.start_seconds, 0.0);
  EXPECT_LT(report.start_seconds, report.seconds);
  std::uint64_t starts = 0;
  for (const NodeStats& n : report.nodes) starts += n.start_ns;
  // The stages start one after another inside the timed start-up.
  EXPECT_LE(static_cast<double>(starts) * 1e-9, report.start_seconds);
}

// Beside trace.json, trace.html draws it: the same events embedded, so that a browser
// with no network shows the run; nothing in the events can end the script element.
TEST(Profile, TheTraceIsAlsoWrittenAsAPageThatDrawsIt) {
  EXPECT_EQ(profiling::trace_viewer_path("/tmp/run/trace.json"), "/tmp/run/trace.html");
  EXPECT_EQ(profiling::trace_viewer_path("/tmp/run/trace"), "/tmp/run/trace.html");
  const std::string hostile = R"({"traceEvents":[{"ph":"X","name":"a</script><b>","pid":1,"tid":1,"ts":0,"dur":1}]})";
  const std::string page = profiling::trace_viewer_page("run <1>", hostile);
  const auto count = [&](const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = page.find(what); at != std::string::npos; at = page.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("</script>"), 2u) << "the template's two script elements, and no more";
  EXPECT_NE(page.find(R"("name":"a<\/script><b>")"), std::string::npos);
  EXPECT_NE(page.find("<title>run &lt;1&gt;</title>"), std::string::npos);

  TempDir dir;
  RunOptions options;
  options.profile_path = dir.path() + "/trace.json";
  Pipeline pipeline(describe(kPipeline), options);
  pipeline.run();
  const std::string written = read_file(dir.path() + "/trace.html");
  const std::string trace = read_file(options.profile_path);
  EXPECT_NE(written.find(trace), std::string::npos) << "the page embeds the trace as written";
  EXPECT_NE(written.find("<canvas"), std::string::npos);
}

TEST(Profile, CommandLineWritesTheTraceAndRunJsonHasTheFigures) {
  TempDir dir;
  // Built-in stages only: the flowrun binary has no test plugins.
  const std::string p = dir.write("p.json", R"({"name": "cli_profile", "prefetch": 64, "nodes": [
    {"id": "src", "plugin": "counter_source", "params": {"count": 600, "epochs": 2}},
    {"id": "slow", "plugin": "identity"}, {"id": "group", "plugin": "identity"}, {"id": "sink", "plugin": "collect"}],
    "edges": ["src -> slow -> group -> sink"]})");
  const auto r = run_flowrun({"run", p, "--run-dir", dir.path() + "/run", "--profile", dir.path() + "/t.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE((r.out + r.err).find("profile: " + dir.path() + "/t.json"), std::string::npos);
  const json run = json::parse(read_file(dir.path() + "/run/run.json"));
  EXPECT_EQ(run.at("reason"), "finished");
  EXPECT_GT(run.at("start_seconds").get<double>(), 0.0);
  EXPECT_NE((r.out + r.err).find(dir.path() + "/t.html"), std::string::npos) << "the log names the drawn trace";
  bool found = false;
  for (const json& n : run.at("nodes")) {
    if (n.at("id") != "slow") continue;
    found = true;
    EXPECT_EQ(n.at("calls"), 1200);
    EXPECT_GT(n.at("call_p99_s").get<double>(), 0.0);
    EXPECT_GE(n.at("start_s").get<double>(), 0.0);
  }
  EXPECT_TRUE(found);
  expect_valid_trace(json::parse(read_file(dir.path() + "/t.json")), {"src", "slow > group", "sink"}, false);
}

// flowrun bench: the training data path alone into a sink that stops after N batches
// (the eval chain, the train stage and what follows it do not run), then the step alone.
TEST(Profile, BenchRunsTheDataPathAloneAndComparesTheTrainStep) {
  TempDir dir;
  const std::string tar = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  const std::string p = dir.write("p.json", R"({"name": "bench_me", "seed": 0, "device": "cpu", "prefetch": 256, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "train/", "per_class_limit": 50, "epochs": 3}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "flip", "plugin": "horizontal_flip"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 16, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "test/", "per_class_limit": 5, "shuffle": false}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 25, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate"},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 32, "depth": 1, "heads": 2, "threads": 1}},
    {"id": "report", "plugin": "report"}],
   "edges": ["data -> decode -> flip -> batch -> train.train", "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model",
             "train -> report.metrics", "train.evaluations -> report.evaluations"]})");
  const auto r = run_flowrun({"bench", p, "--batches", "10", "--model", "--steps", "3"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string out = r.out + r.err;
  EXPECT_NE(out.find("bench: data path"), std::string::npos) << out;
  EXPECT_NE(out.find("images batched by 'batch'"), std::string::npos) << out;
  EXPECT_NE(out.find("bench_sink"), std::string::npos) << out;
  EXPECT_EQ(out.find("test_decode"), std::string::npos) << "the eval chain ran:\n" << out;
  EXPECT_NE(out.find("bench: train step"), std::string::npos) << out;
  EXPECT_TRUE(out.find("INPUT-BOUND") != std::string::npos || out.find("COMPUTE-BOUND") != std::string::npos) << out;
}

}  // namespace
}  // namespace flowrun::testing
