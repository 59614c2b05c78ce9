// flowrun ablate: the file format and its errors, reading run folders, mean ± std over
// seeds, the three reports, and a real sweep on CIFAR-10 JPEGs that resumes without
// running a finished run again.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ablation.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;
using namespace flowrun::ablation;

void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "expected '" << fragment << "' in:\n" << text;
}

std::string error_of(const std::string& text, const TempDir& dir) {
  try {
    parse_spec_text(text, dir.path() + "/abl.json");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Ablation, ParsesAFileAndBuildsEachRunsOverrides) {
  TempDir dir;
  dir.write("base.json", "{}");
  const std::string path = dir.write("abl.json", R"J({
    // comments are allowed, as in descriptions
    "name": "aug", "base": "base.json", "seeds": [3, 1], "set": ["nodes.a.params.epochs=2"],
    "metric": "macro_f1",
    "variants": [{"name": "plain"}, {"name": "ra", "set": ["nodes.aug.plugin=randaugment"], "note": "RandAugment(2, 9)"}]})J");
  const Spec s = parse_spec(path);
  EXPECT_EQ(s.name, "aug");
  EXPECT_EQ(s.base, (fs::path(dir.path()) / "base.json").lexically_normal().string());
  EXPECT_EQ(s.seeds, (std::vector<std::uint64_t>{3, 1}));
  EXPECT_EQ(s.metric, "macro_f1");
  ASSERT_EQ(s.variants.size(), 2u);
  EXPECT_EQ(s.variants[1].note, "RandAugment(2, 9)");
  EXPECT_EQ(s.run_overrides(s.variants[1], 3),
            (std::vector<std::string>{"nodes.a.params.epochs=2", "nodes.aug.plugin=randaugment", "seed=3"}));
  EXPECT_EQ(Spec::run_name(s.variants[0], 1), "plain-s1");
}

TEST(Ablation, RefusesMistakesNamingTheEntry) {
  TempDir dir;
  dir.write("base.json", "{}");
  const std::string ok_head = R"("name": "a", "base": "base.json", "seeds": [0], )";
  expect_contains(error_of(R"({"name": "a", "seeds": [0], "variants": [{"name": "x"}]})", dir), "base: missing");
  expect_contains(error_of("{" + ok_head + R"("variants": [{"name": "x"}], "seed": 3})", dir), "seed: unknown key");
  expect_contains(error_of("{" + ok_head + R"("variants": [{"name": "x"}, {"name": "x"}]})", dir),
                  "variants[1].name: 'x' is used twice");
  expect_contains(error_of("{" + ok_head + R"("variants": [{"name": "x", "set": ["lr"]}]})", dir),
                  "variants[0].set[0]: 'lr' is not PATH=VALUE");
  expect_contains(error_of("{" + ok_head + R"("variants": [{"name": "a b"}]})", dir), "variants[0].name");
  expect_contains(error_of("{" + ok_head + R"("variants": []})", dir), "variants: expected a non-empty list");
  expect_contains(error_of(R"({"name": "a", "base": "base.json", "seeds": [1, 1], "variants": [{"name": "x"}]})", dir),
                  "seeds[1]: seed listed twice");
  expect_contains(error_of(R"({"name": "a", "base": "nope.json", "seeds": [1], "variants": [{"name": "x"}]})", dir),
                  "base: no pipeline at");
  expect_contains(error_of("{not json", dir), "not valid JSON");
}

TEST(Ablation, MeanAndSampleStdOverSeeds) {
  const Stat two = stat_of({0.5, 0.7});
  EXPECT_EQ(two.n, 2u);
  EXPECT_NEAR(two.mean, 0.6, 1e-12);
  EXPECT_NEAR(two.std, std::sqrt(0.02), 1e-12);  // sample std: sum of squares / (n - 1)
  const Stat one = stat_of({0.42, std::nan("")});
  EXPECT_EQ(one.n, 1u);
  EXPECT_EQ(one.std, 0.0);
  EXPECT_TRUE(std::isnan(stat_of({}).mean));
}

// A run folder as `flowrun run` leaves it: metrics.jsonl and run.json.
void fake_run(const std::string& folder, const std::vector<double>& accuracies, double rate, const char* reason) {
  fs::create_directories(folder);
  std::ofstream m(folder + "/metrics.jsonl");
  for (std::size_t i = 0; i < accuracies.size(); ++i) {
    m << R"({"scope":"train","step":)" << 10 * (i + 1) << R"(,"epoch":)" << i << R"(,"images_per_s":)" << rate + i
      << R"(,"total_steps":30})" << "\n";
    m << R"({"scope":"eval","step":)" << 10 * (i + 1) << R"(,"epoch":)" << i << R"(,"accuracy":)" << accuracies[i]
      << R"(,"loss":1.5})" << "\n";
  }
  m << R"({"scope":"eval","step":)";  // a line cut short by a kill is ignored
  if (reason) {
    std::ofstream(folder + "/run.json") << R"({"reason": ")" << reason << R"(", "seconds": 100, "nodes": [
      {"id": "data", "plugin": "tar", "busy_s": 5}, {"id": "train", "plugin": "train", "busy_s": 90, "active_s": 100}],
      "data_stall": {"train": {"share": 0.1, "verdict": "moderately input-bound"}}})";
  }
}

TEST(Ablation, ReadsRunFoldersAndSummarizesEachVariant) {
  TempDir dir;
  dir.write("base.json", "{}");
  const Spec spec = parse_spec_text(R"({"name": "t", "base": "base.json", "seeds": [0, 1],
      "variants": [{"name": "plain"}, {"name": "more", "set": ["nodes.a.plugin=b"]}]})", dir.path() + "/abl.json");
  fake_run(dir.path() + "/plain-s0", {0.30, 0.50, 0.45}, 300, "finished");
  fake_run(dir.path() + "/plain-s1", {0.32, 0.40, 0.55}, 310, "finished");
  fake_run(dir.path() + "/more-s0", {0.20, 0.60, 0.62}, 200, "finished");
  fake_run(dir.path() + "/more-s1", {0.21}, 210, nullptr);  // killed: no run.json
  std::vector<RunResult> runs;
  for (const char* v : {"plain", "more"})
    for (std::uint64_t seed : {0, 1})
      runs.push_back(read_run(dir.path() + "/" + v + "-s" + std::to_string(seed), v, seed, "accuracy"));
  EXPECT_EQ(runs[0].state, "finished");
  EXPECT_DOUBLE_EQ(runs[0].final_metric, 0.45);
  EXPECT_DOUBLE_EQ(runs[0].best_metric, 0.50);
  EXPECT_DOUBLE_EQ(runs[0].images_per_s, 301);  // median of 300, 301, 302
  EXPECT_NEAR(runs[0].data_stall, 0.10, 1e-12);
  EXPECT_EQ(runs[0].step, 30);
  EXPECT_EQ(runs[0].total_steps, 30);
  EXPECT_EQ(runs[3].state, "interrupted");
  EXPECT_EQ(read_run(dir.path() + "/absent", "x", 0, "accuracy").state, "not run");
  EXPECT_DOUBLE_EQ(read_run(dir.path() + "/plain-s0", "plain", 0, "loss").best_metric, 1.5);

  const auto summary = summarize(spec, runs);
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].finished, 2u);
  EXPECT_NEAR(summary[0].final_metric.mean, 0.50, 1e-12);
  EXPECT_NEAR(summary[0].final_metric.std, std::sqrt(0.005), 1e-12);
  EXPECT_NEAR(summary[0].best_metric.mean, 0.525, 1e-12);
  ASSERT_EQ(summary[0].mean_curve.size(), 3u);
  EXPECT_NEAR(summary[0].mean_curve[1].second, 0.45, 1e-12);
  EXPECT_EQ(summary[1].finished, 1u);  // the interrupted seed does not count
  EXPECT_NEAR(summary[1].final_metric.mean, 0.62, 1e-12);

  const std::string md = render_markdown(spec, summary, "test machine");
  expect_contains(md, "| plain | 2/2 | 50.00 ± 7.07 | 52.50 ± 3.54 | baseline |");
  expect_contains(md, "| more | 1/2 | 62.00 | 62.00 | +12.00 |");
  expect_contains(md, "Measured on test machine.");
  expect_contains(md, "- **more**: `nodes.a.plugin=b`");
  const std::string csv = render_csv(spec, summary);
  expect_contains(csv, "variant,runs,finished,failed,metric,final_mean,final_std,best_mean,best_std");
  expect_contains(md, "| 306 | 10.0% |");  // mean of the seeds' median images/s (301, 311), and the data stall
  expect_contains(csv, "plain,2,2,0,accuracy,0.5,0.0707107,0.525,0.0353553,");
  const std::string runs_csv = render_runs_csv(spec, runs);
  expect_contains(runs_csv, "more,1,interrupted,accuracy,0.21,0.21,");
  const std::string page = render_html(spec, summary, runs, "test machine");
  expect_contains(page, "<svg id=\"curves\"");
  expect_contains(page, "<svg id=\"final\"");
  expect_contains(page, "class=\"whisker\"");  // the error bar of the variant with two seeds
  expect_contains(page, "<table class=\"scores\" id=\"summary\">");
  EXPECT_EQ(page.find("<script"), std::string::npos);  // self-contained, no scripts
}

// A real sweep: 2 variants x 1 seed of a tiny training run on CIFAR-10 JPEGs, then the
// same command again (nothing re-run), then with one run's result removed (only it runs).
TEST(Ablation, SweepRunsEachVariantOnceAndResumes) {
  TempDir dir;
  const std::string tar = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  dir.write("base.json", R"({"name": "abl_base", "seed": 0, "device": "cpu", "prefetch": 256, "threads": 2, "nodes": [
    {"id": "data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "train/", "per_class_limit": 8, "epochs": 2}},
    {"id": "decode", "plugin": "jpeg_decode"},
    {"id": "augment", "plugin": "identity"},
    {"id": "batch", "plugin": "batch", "params": {"batch_size": 32, "drop_last": true, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "test_data", "plugin": "tar", "params": {"paths": [")" + tar + R"("], "prefix": "test/", "per_class_limit": 5, "shuffle": false, "epochs": 2}},
    {"id": "test_decode", "plugin": "jpeg_decode"},
    {"id": "test_batch", "plugin": "batch", "params": {"batch_size": 25, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}},
    {"id": "eval", "plugin": "evaluate"},
    {"id": "train", "plugin": "train", "params": {"model": "vit_cifar_micro", "width": 32, "depth": 1, "heads": 2,
        "drop_path": 0.0, "log_every": 1, "threads": 1, "save_every_epochs": 1}},
    {"id": "checkpoint", "plugin": "checkpoint", "params": {"keep_last": 1}},
    {"id": "report", "plugin": "report", "params": {"html": false}}],
   "edges": ["data -> decode -> augment -> batch -> train.train", "test_data -> test_decode -> test_batch -> eval.batch", "train.model -> eval.model",
             "train.state -> checkpoint", "train -> report.metrics", "train.evaluations -> report.evaluations"]})");
  const std::string file = dir.write("abl.json", R"({"name": "tiny", "base": "base.json", "seeds": [5],
    "variants": [{"name": "plain"}, {"name": "flip", "set": ["nodes.augment.plugin=horizontal_flip"]}]})");
  const std::string out = dir.path() + "/sweep";

  auto r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* run : {"plain-s5", "flip-s5"}) {
    const std::string run_json = read_file(out + "/" + run + "/run.json");
    expect_contains(run_json, "\"reason\": \"finished\"");
    expect_contains(read_file(out + "/" + run + "/pipeline.json"), "\"seed\": 5");
  }
  expect_contains(read_file(out + "/flip-s5/pipeline.json"), "horizontal_flip");
  const std::string md = read_file(out + "/ablation.md");
  expect_contains(md, "| plain | 1/1 |");
  expect_contains(md, "| flip | 1/1 |");
  expect_contains(r.out, "# Ablation: tiny");  // the table is also printed
  EXPECT_TRUE(fs::exists(out + "/ablation.html"));
  EXPECT_TRUE(fs::exists(out + "/ablation_runs.csv"));
  const std::string first_md = md;

  r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "plain-s5: finished (not run again)");
  EXPECT_EQ(read_file(out + "/ablation.md"), first_md);

  fs::remove(out + "/flip-s5/run.json");  // as if the sweep was killed during this run
  r = run_flowrun({"ablate", file, "--out", out, "--dry-run"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "flip-s5: interrupted (resumes from its newest checkpoint)");
  r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(read_file(out + "/flip-s5/console.log"), "resuming from");
  expect_contains(read_file(out + "/ablation.md"), "| flip | 1/1 |");
}

TEST(Ablation, AnInvalidVariantStopsTheSweepBeforeAnyRun) {
  TempDir dir;
  const std::string file = dir.write("abl.json", R"({"name": "bad", "base": ")" + source_dir() +
                                                     R"(/pipelines/runtime_demo.json", "seeds": [0],
    "variants": [{"name": "ok"}, {"name": "broken", "set": ["nodes.nope.params.x=1"]}]})");
  const auto r = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  expect_contains(r.err, "variant 'broken'");
  EXPECT_FALSE(fs::exists(dir.path() + "/sweep/ok-s0"));
}

}  // namespace
}  // namespace flowrun::testing
