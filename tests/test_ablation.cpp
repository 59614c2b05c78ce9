// flowrun ablate: the file format and its errors, reading run folders, mean ± std over
// seeds, the three reports, and a real sweep on CIFAR-10 JPEGs that resumes without
// running a finished run again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

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
  ASSERT_EQ(s.axes.size(), 1u);  // the one-axis form
  EXPECT_EQ(s.axes[0].name, "variant");
  ASSERT_EQ(s.cells.size(), 2u);
  EXPECT_EQ(s.axes[0].entries[1].note, "RandAugment(2, 9)");
  EXPECT_EQ(s.run_overrides(s.cells[1], 3),
            (std::vector<std::string>{"nodes.a.params.epochs=2", "nodes.aug.plugin=randaugment", "seed=3"}));
  EXPECT_EQ(Spec::run_name(s.cells[0], 1), "plain-s1");
  EXPECT_EQ(s.cols, kNoAxis);
}

// Axes: the product in the file's order (the first axis slowest), named
// ENTRY1-ENTRY2, overrides applied axis by axis; the baseline and the pivot by name;
// variants beside axes as the first axis; ${prepare.NAME} checked and substituted.
TEST(Ablation, AxesArePlannedAsTheirProduct) {
  TempDir dir;
  dir.write("base.json", "{}");
  dir.write("pre.json", "{}");
  const Spec s = parse_spec(dir.write("grid.json", R"J({
    "name": "grid", "base": "base.json", "seeds": [0, 1],
    "prepare": [{"name": "pretrain", "pipeline": "pre.json", "set": ["nodes.t.params.export=${prepare.pretrain}/export"]}],
    "axes": {
      "strategy": [{"name": "probe", "set": ["nodes.t.params.strategy=linear_probe", "nodes.t.params.pretrained=${prepare.pretrain}/export"]},
                   {"name": "full", "set": ["nodes.t.params.strategy=full_ft"]},
                   {"name": "scratch"}],
      "per_class": [{"name": "10", "set": ["nodes.d.params.per_class_limit=10"]},
                    {"name": "50", "set": ["nodes.d.params.per_class_limit=50"]}]},
    "baseline": {"strategy": "full"}, "rows": "per_class"})J"));
  ASSERT_EQ(s.axes.size(), 2u);
  EXPECT_EQ(s.axes[0].name, "strategy");  // the file's order, not alphabetical
  EXPECT_EQ(s.axes[0].baseline, 1u);
  ASSERT_EQ(s.cells.size(), 6u);
  std::vector<std::string> names;
  for (const Cell& c : s.cells) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"probe-10", "probe-50", "full-10", "full-50", "scratch-10", "scratch-50"}));
  EXPECT_EQ(s.cell_index({2, 1}), 5u);
  EXPECT_EQ(Spec::run_name(s.cells[1], 1), "probe-50-s1");
  EXPECT_EQ(s.run_overrides(s.cells[1], 1),
            (std::vector<std::string>{"nodes.t.params.strategy=linear_probe", "nodes.t.params.pretrained=${prepare.pretrain}/export",
                                      "nodes.d.params.per_class_limit=50", "seed=1"}));
  EXPECT_EQ(s.rows, 1u);  // "rows": "per_class"
  EXPECT_EQ(s.cols, 0u);  // the other axis
  ASSERT_EQ(s.prepare.size(), 1u);
  EXPECT_EQ(s.prepare[0].pipeline, (fs::path(dir.path()) / "pre.json").lexically_normal().string());
  EXPECT_EQ(substitute_prepared("p=${prepare.pretrain}/export:${prepare.pretrain}", {{"pretrain", "/r/prepare/pretrain"}}),
            "p=/r/prepare/pretrain/export:/r/prepare/pretrain");
  EXPECT_THROW(substitute_prepared("p=${prepare.other}", {{"pretrain", "/r"}}), std::runtime_error);

  Spec pivoted = s;
  pivoted.set_pivot("strategy", "");
  EXPECT_EQ(pivoted.rows, 0u);
  EXPECT_EQ(pivoted.cols, 1u);
  EXPECT_THROW(pivoted.set_pivot("nope", ""), std::runtime_error);

  const Spec both = parse_spec(dir.write("both.json", R"J({"name": "b", "base": "base.json", "seeds": [0],
    "variants": [{"name": "a"}, {"name": "b"}], "axes": {"lr": [{"name": "lo"}, {"name": "hi"}]}})J"));
  ASSERT_EQ(both.axes.size(), 2u);
  EXPECT_EQ(both.axes[0].name, "variant");
  EXPECT_EQ(both.cells[1].name, "a-hi");
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
  expect_contains(error_of("{" + ok_head + R"("axes": {"lr": [{"name": "a", "set": [], "set": ["x=1"]}]}})", dir),
                  "axes.lr[0]: the key \"set\" appears twice");
  expect_contains(error_of("{" + ok_head + R"("metric": "accuracy"})", dir), "give \"variants\" (a list) or \"axes\"");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x-y"}], "b": [{"name": "z"}], "c": []}})", dir),
                  "axes.c: expected a non-empty list");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x-y"}, {"name": "x"}], "b": [{"name": "y-z"}, {"name": "z"}]}})", dir),
                  "two combinations are both named 'x-y-z'");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x", "set": ["p=${prepare.pre}/e"]}]}})", dir),
                  "axes.a[0].set[0]: ${prepare.pre} names no prepared run");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x", "set": ["p=${prepare.pre"]}]}})", dir),
                  "without a closing }");
  expect_contains(error_of("{" + ok_head + R"("prepare": [{"name": "p", "pipeline": "base.json", "set": ["x=${prepare.q}"]},
                                                       {"name": "q", "pipeline": "base.json"}], "variants": [{"name": "x"}]})", dir),
                  "prepare[0].set[0]: ${prepare.q} names no prepared run before this entry");
  expect_contains(error_of("{" + ok_head + R"("prepare": [{"name": "p"}], "variants": [{"name": "x"}]})", dir),
                  "prepare[0].pipeline: missing");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x"}]}, "baseline": {"a": "y"}})", dir),
                  "baseline.a: expected the name of one of the axis's entries");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x"}], "b": [{"name": "y"}]}, "rows": "c"})", dir),
                  "rows: no axis 'c' (the axes: a, b)");
  expect_contains(error_of("{" + ok_head + R"("axes": {"a": [{"name": "x"}], "b": [{"name": "y"}]}, "rows": "a", "cols": "a"})", dir),
                  "cols: 'a' is also the rows axis");
}

// The 95% interval's t quantiles against the printed table (two-sided 0.05, e.g.
// NIST/SEMATECH e-Handbook table 1.4.2.7.3), and a paired interval computed by hand.
// What a run folder recorded against what the file asks now: prose does not count.
TEST(Ablation, DescriptionDifferencesNameEachChangedValue) {
  const std::string recorded = R"({"name": "p", "seed": 1, "description": "old words",
    "nodes": [{"id": "a", "params": {"lr": 0.001, "x": 1}}, {"id": "b", "note": "b"}]})";
  EXPECT_EQ(description_differences(recorded, recorded), "");
  EXPECT_EQ(description_differences(recorded, R"({"name": "p", "seed": 1, "description": "new words",
    "nodes": [{"id": "a", "params": {"x": 1, "lr": 1e-3}}, {"id": "b"}]})"), "");
  EXPECT_EQ(description_differences(recorded, R"({"name": "p", "seed": 1,
    "nodes": [{"id": "a", "params": {"lr": 0.001, "x": 1, "note": "a parameter"}}, {"id": "b"}, {"id": "c"}]})"),
            "/nodes/0/params/note: absent there, \"a parameter\" now; /nodes/2: absent there, {\"id\":\"c\"} now");
  EXPECT_EQ(description_differences(recorded, R"({"name": "p", "seed": 2,
    "nodes": [{"id": "a", "params": {"lr": 0.002, "y": 3}}, {"id": "b"}]})"),
            "/nodes/0/params/lr: 0.001 there, 0.002 now; /nodes/0/params/x: 1 there, absent now; "
            "/nodes/0/params/y: absent there, 3 now; and 1 more");
}

TEST(Ablation, StudentTQuantilesMatchTheTable) {
  const std::vector<std::pair<double, double>> table = {{1, 12.706}, {2, 4.303}, {3, 3.182}, {4, 2.776}, {5, 2.571},
                                                        {9, 2.262},  {19, 2.093}, {29, 2.045}, {100, 1.984}};
  for (const auto& [df, t] : table) EXPECT_NEAR(student_t_quantile(0.975, df), t, 5e-4) << "df " << df;
  EXPECT_NEAR(student_t_quantile(0.95, 5), 2.015, 5e-4);  // one-sided 0.05
  EXPECT_NEAR(student_t_quantile(0.995, 10), 3.169, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.025, 4), -2.776, 5e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 1e6), 1.960, 5e-4);  // the normal limit
  EXPECT_THROW(student_t_quantile(1.0, 3), std::invalid_argument);
  EXPECT_EQ(student_t_quantile(0.5, 7), 0.0);
  EXPECT_NEAR(student_t_quantile(0.50001, 1e6), 2.5066e-5, 1e-8);  // the normal's, near the middle
  EXPECT_LT(student_t_quantile(0.9, 3), student_t_quantile(0.95, 3));

  // Differences 0.02, 0.01, 0.03: mean 0.02, s 0.01, half-width 4.3027 * 0.01 / sqrt(3).
  const Interval d = paired_difference({0.60, 0.62, 0.65, std::nan("")}, {0.58, 0.61, 0.62, 0.5});
  EXPECT_EQ(d.n, 3u);  // the pair with a missing run is left out
  EXPECT_NEAR(d.mean, 0.02, 1e-12);
  EXPECT_NEAR(d.hi - d.mean, 4.302653 * 0.01 / std::sqrt(3.0), 1e-7);
  EXPECT_FALSE(d.excludes_zero());  // [-0.0048, 0.0448]
  EXPECT_TRUE(paired_difference({0.60, 0.62, 0.65}, {0.58, 0.60, 0.62}).excludes_zero());  // 0.02, 0.02, 0.03
  const Interval one = paired_difference({0.6}, {0.5});
  EXPECT_EQ(one.n, 1u);
  EXPECT_FALSE(one.defined());
  EXPECT_FALSE(one.excludes_zero());
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
      << R"(,"loss":)" << 1.5 + 0.1 * static_cast<double>(i) << R"(,"train_loss":)" << 2.0 - 0.5 * static_cast<double>(i)
      << "}\n";
  }
  m << R"({"scope":"train_epoch","step":30,"epoch":2,"loss":0.1,"accuracy":0.97,"seconds":3})" << "\n";
  if (accuracies.size() == 3 && accuracies[2] < accuracies[1])  // the validation metric fell: as the train stage would say
    m << R"({"scope":"note","step":30,"epoch":2,"note":"overfitting: validation loss rose over the last 3 evaluations"})" << "\n";
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
  for (std::size_t cell = 0; cell < 2; ++cell)
    for (std::uint64_t seed : {0, 1}) {
      runs.push_back(read_run(dir.path() + "/" + Spec::run_name(spec.cells[cell], seed), "accuracy"));
      runs.back().cell = cell;
      runs.back().seed = seed;
      runs.back().name = Spec::run_name(spec.cells[cell], seed);
    }
  EXPECT_EQ(runs[0].state, "finished");
  EXPECT_DOUBLE_EQ(runs[0].final_metric, 0.45);
  EXPECT_DOUBLE_EQ(runs[0].best_metric, 0.50);
  EXPECT_DOUBLE_EQ(runs[0].images_per_s, 301);  // median of 300, 301, 302
  EXPECT_NEAR(runs[0].data_stall, 0.10, 1e-12);
  EXPECT_EQ(runs[0].step, 30);
  EXPECT_EQ(runs[0].total_steps, 30);
  EXPECT_EQ(runs[3].state, "interrupted");
  EXPECT_EQ(read_run(dir.path() + "/absent", "accuracy").state, "not run");
  EXPECT_DOUBLE_EQ(read_run(dir.path() + "/plain-s0", "loss").best_metric, 1.5);

  const Report report = analyse(spec, runs, {}, "test machine");
  const auto& summary = report.cells;
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].finished, 2u);
  EXPECT_NEAR(summary[0].final_metric.mean, 0.50, 1e-12);
  EXPECT_NEAR(summary[0].final_metric.std, std::sqrt(0.005), 1e-12);
  EXPECT_NEAR(summary[0].best_metric.mean, 0.525, 1e-12);
  ASSERT_EQ(summary[0].mean_curve.size(), 3u);
  EXPECT_NEAR(summary[0].mean_curve[1].second, 0.45, 1e-12);
  ASSERT_EQ(summary[0].mean_train_loss_curve.size(), 3u);
  EXPECT_NEAR(summary[0].mean_train_loss_curve[2].second, 1.0, 1e-12);
  EXPECT_NEAR(summary[0].mean_loss_curve[2].second, 1.7, 1e-12);
  EXPECT_EQ(runs[0].diagnoses, (std::vector<std::string>{"overfitting"}));  // plain-s0: 0.50 -> 0.45
  EXPECT_EQ(summary[0].diagnoses.at("overfitting"), 1u);
  EXPECT_EQ(summary[1].finished, 1u);  // the interrupted seed does not count
  EXPECT_NEAR(summary[1].final_metric.mean, 0.62, 1e-12);

  // Paired by seed: only seed 0 finished for both, so one difference and no interval.
  ASSERT_EQ(report.comparisons.size(), 1u);
  EXPECT_EQ(report.comparisons[0].seeds, (std::vector<std::uint64_t>{0}));
  EXPECT_NEAR(report.comparisons[0].difference.mean, 0.62 - 0.45, 1e-12);
  const std::string md = render_markdown(spec, report);
  expect_contains(md, "| variant | runs | final accuracy (%) | best accuracy (%) | Δ final vs plain (95% CI) | resolved |");
  expect_contains(md, "| plain | 2/2 | 50.00 ± 7.07 | 52.50 ± 3.54 | baseline | - |");
  expect_contains(md, "| more | 1/2 | 62.00 | 62.00 | +17.00 (1 seed) | - |");
  expect_contains(md, "Measured on test machine.");
  expect_contains(md, "- **more**: `nodes.a.plugin=b`");
  const std::string csv = render_csv(spec, report);
  expect_contains(csv, "variant,runs,finished,failed,metric,final_mean,final_std,final_ci_lo,final_ci_hi,best_mean,best_std");
  expect_contains(md, "| 97.0 | 306 | 10.0% | 1.7 | overfitting 1/2 |");  // mean of the seeds' median images/s (301, 311), and the data stall
  // 0.5 -+ t(0.975, 1) 0.0707107 / sqrt(2) = 0.5 -+ 0.63531
  expect_contains(csv, "plain,2,2,0,accuracy,0.5,0.0707107,-0.13531,1.13531,0.525,0.0353553,");
  const std::string runs_csv = render_runs_csv(spec, report);
  expect_contains(runs_csv, "more,1,interrupted,accuracy,0.21,0.21,");
  expect_contains(render_differences_csv(spec, report), "variant,more,plain,accuracy,1,0.17,,,,0,0.17\n");
  const std::string page = render_html(spec, report);
  expect_contains(page, "<svg id=\"curves\"");
  expect_contains(page, "<svg id=\"train-loss\"");
  expect_contains(page, "<svg id=\"final\"");
  expect_contains(page, "class=\"whisker\"");  // the error bar of the variant with two seeds
  expect_contains(page, "<table class=\"scores\" id=\"summary\">");
  EXPECT_EQ(page.find("<script"), std::string::npos);  // self-contained, no scripts
}

// Three axes with the baseline in the middle of one: every cell is compared with the
// cell that differs only on one axis, there set to that axis's baseline, pairing the
// seeds both finished; one pair of pivot tables per entry combination of the others.
TEST(Ablation, ThreeAxesCompareEachCellWithItsBaselineAlongEveryAxis) {
  TempDir dir;
  dir.write("base.json", "{}");
  const Spec spec = parse_spec_text(R"({"name": "g3", "base": "base.json", "seeds": [4, 2, 9],
      "axes": {"a": [{"name": "a0"}, {"name": "a1"}],
               "b": [{"name": "b0"}, {"name": "b1"}, {"name": "b2"}],
               "c": [{"name": "c0"}, {"name": "c1"}]},
      "baseline": {"b": "b1"}, "rows": "b", "cols": "c"})", dir.path() + "/abl.json");
  ASSERT_EQ(spec.cells.size(), 12u);
  // final = 0.1 a + 0.01 b + 0.001 c + 0.0001 * seed, so every difference is exact.
  std::vector<RunResult> runs;
  for (std::uint64_t seed : spec.seeds)
    for (std::size_t c = 0; c < spec.cells.size(); ++c) {
      RunResult r;
      r.cell = c;
      r.seed = seed;
      r.state = "finished";
      const auto& e = spec.cells[c].entries;
      r.final_metric = 0.1 * e[0] + 0.01 * e[1] + 0.001 * e[2] + 0.0001 * static_cast<double>(seed) * (e[1] == 2 ? 2 : 1);
      if (spec.cells[c].name == "a1-b2-c0" && seed == 2) r.state = "failed";  // one pair fewer
      runs.push_back(r);
    }
  const Report report = analyse(spec, runs, {}, "");
  EXPECT_EQ(report.comparisons.size(), 6u + 8u + 6u);  // off-baseline cells along a, b and c
  const std::size_t cell = spec.cell_index({1, 2, 0});  // a1-b2-c0 against a1-b1-c0
  const Comparison* cmp = report.find(1, cell);
  ASSERT_NE(cmp, nullptr);
  EXPECT_EQ(cmp->baseline, spec.cell_index({1, 1, 0}));
  EXPECT_EQ(cmp->seeds, (std::vector<std::uint64_t>{4, 9}));  // seed 2 failed in the cell
  EXPECT_NEAR(cmp->difference.mean, 0.01 + 0.0001 * (4 + 9) / 2.0, 1e-12);
  EXPECT_EQ(report.find(1, spec.cell_index({0, 1, 1})), nullptr);  // on b's baseline
  const Comparison* along_a = report.find(0, spec.cell_index({1, 0, 1}));
  ASSERT_NE(along_a, nullptr);
  EXPECT_EQ(along_a->baseline, spec.cell_index({0, 0, 1}));
  EXPECT_NEAR(along_a->difference.mean, 0.1, 1e-12);
  EXPECT_EQ(along_a->difference.n, 3u);
  EXPECT_NEAR(along_a->difference.lo, along_a->difference.hi, 1e-12);  // identical differences: a zero-width interval

  const std::string md = render_markdown(spec, report);
  expect_contains(md, "## Final accuracy (%): b × c (a=a0)");
  expect_contains(md, "## Δ final vs b=b1, paired by seed (95% CI) (a=a1)");
  expect_contains(md, "| b \\ c | c0 | c1 |");
  expect_contains(md, "| b1 | baseline | baseline |");
  const std::string page = render_html(spec, report);
  expect_contains(page, "id=\"pivot-delta-1\"");  // one table per value of a, each its own id
}

// The base pipeline of the real sweeps: a one-block ViT for a few steps on CIFAR-10 JPEGs.
std::string tiny_base(const TempDir& dir) {
  const std::string tar = source_dir() + "/../shared/data/cifar10-jpeg.tar";
  return dir.write("base.json", R"({"name": "abl_base", "seed": 0, "device": "cpu", "prefetch": 256, "threads": 2, "nodes": [
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
}

// One CSV line's fields (the reports quote no field these tests read).
std::vector<std::string> fields(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream in(line);
  for (std::string f; std::getline(in, f, ',');) out.push_back(f);
  return out;
}

// The CI grid: a prepared run (a pretraining that exports), then 2 x 2 cells x 2 seeds
// fine-tuned from its export or from scratch. Checks the run set and folder names, the
// ${prepare.NAME} path in the runs' descriptions, the pivot tables, the paired
// intervals against the per-run finals, and the resume: nothing runs again, then only
// the run whose result was removed.
TEST(Ablation, GridWithAPreparedRunRunsEachRunOnceAndResumes) {
  TempDir dir;
  tiny_base(dir);
  const std::string file = dir.write("grid.json", R"({"name": "grid", "base": "base.json", "seeds": [5, 6],
    "prepare": [{"name": "pretrain", "pipeline": "base.json", "set": ["nodes.train.params.export=${prepare.pretrain}/export"]}],
    "axes": {"init": [{"name": "pretrained", "set": ["nodes.train.params.pretrained=${prepare.pretrain}/export"]},
                      {"name": "scratch"}],
             "per_class": [{"name": "4", "set": ["nodes.data.params.per_class_limit=4", "nodes.batch.params.batch_size=8"]},
                           {"name": "8"}]}})");
  const std::string out = dir.path() + "/sweep";

  auto r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(fs::exists(out + "/prepare/pretrain/export/model.safetensors"));
  std::set<std::string> folders;
  for (const auto& e : fs::directory_iterator(out))
    if (e.is_directory()) folders.insert(e.path().filename().string());
  EXPECT_EQ(folders, (std::set<std::string>{"prepare", "pretrained-4-s5", "pretrained-4-s6", "pretrained-8-s5", "pretrained-8-s6",
                                            "scratch-4-s5", "scratch-4-s6", "scratch-8-s5", "scratch-8-s6"}));
  const std::string export_path = fs::absolute(out + "/prepare/pretrain/export").lexically_normal().string();
  expect_contains(read_file(out + "/pretrained-4-s6/pipeline.json"), "\"pretrained\": \"" + export_path + "\"");
  expect_contains(read_file(out + "/pretrained-4-s6/pipeline.json"), "\"per_class_limit\": 4");
  expect_contains(read_file(out + "/pretrained-4-s6/pipeline.json"), "\"seed\": 6");
  EXPECT_EQ(read_file(out + "/scratch-8-s5/pipeline.json").find(export_path), std::string::npos);

  const std::string md = read_file(out + "/ablation.md");
  expect_contains(md, "- **pretrain** (finished, final accuracy ");
  expect_contains(md, "| init | per_class | runs |");
  expect_contains(md, "| pretrained | 4 | 2/2 |");
  expect_contains(md, "## Final accuracy (%): init × per_class");
  expect_contains(md, "| init \\ per_class | 4 | 8 |");
  expect_contains(md, "## Δ final vs init=pretrained, paired by seed (95% CI)");
  expect_contains(md, "| pretrained | baseline | baseline |");
  expect_contains(r.out, "# Ablation: grid");

  // Each interval from the runs' own finals: scratch-P - pretrained-P with the same seed.
  std::map<std::string, double> final_of;  // "scratch-4-s5" -> final
  const std::string runs_csv = read_file(out + "/ablation_runs.csv");
  std::stringstream lines(runs_csv);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "init,per_class,seed,state,metric,final,best,train_accuracy,images_per_s,data_stall,wall_s,diagnoses,folder");
  while (std::getline(lines, line)) {
    const auto f = fields(line);
    ASSERT_GE(f.size(), 6u) << line;
    EXPECT_EQ(f[3], "finished") << line;
    final_of[f[0] + "-" + f[1] + "-s" + f[2]] = std::stod(f[5]);
  }
  ASSERT_EQ(final_of.size(), 8u);
  const std::string differences = read_file(out + "/ablation_differences.csv");
  for (const char* per_class : {"4", "8"}) {
    const std::string p = per_class;
    const double d5 = final_of["scratch-" + p + "-s5"] - final_of["pretrained-" + p + "-s5"];
    const double d6 = final_of["scratch-" + p + "-s6"] - final_of["pretrained-" + p + "-s6"];
    const Interval expected = mean_interval({d5, d6});
    const std::size_t at = differences.find("init,scratch-" + p + ",pretrained-" + p + ",accuracy,2,");
    ASSERT_NE(at, std::string::npos) << differences;
    const auto f = fields(differences.substr(at, differences.find('\n', at) - at));
    ASSERT_EQ(f.size(), 11u);
    EXPECT_NEAR(std::stod(f[5]), 0.5 * (d5 + d6), 1e-5);
    if (d5 != d6) {
      EXPECT_NEAR(std::stod(f[6]), expected.lo, 1e-5);
      EXPECT_NEAR(std::stod(f[7]), 0.5 * (d5 + d6) + 12.7062 * std::abs(d5 - d6) / 2, 1e-4);  // s = |d5 - d6| / sqrt(2)
    }
    EXPECT_EQ(f[8], expected.excludes_zero() ? "yes" : "no");
  }
  expect_contains(differences, "per_class,pretrained-8,pretrained-4,accuracy,2,");  // along the other axis too
  const std::string page = read_file(out + "/ablation.html");
  expect_contains(page, "<svg id=\"against-0\"");  // accuracy against the numeric per_class axis
  expect_contains(page, "<svg id=\"differences\"");
  expect_contains(page, "<table class=\"scores\" id=\"pivot-delta\">");

  // Again: nothing runs.
  r = run_flowrun({"ablate", file, "--out", out, "--rows", "per_class"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "prepare/pretrain: finished (not run again)");
  expect_contains(r.out + r.err, "scratch-8-s6: finished (not run again)");
  EXPECT_EQ(r.out.find("run 1/"), std::string::npos) << r.out;
  expect_contains(read_file(out + "/ablation.md"), "| per_class \\ init | pretrained | scratch |");  // --rows

  fs::remove(out + "/scratch-4-s6/run.json");  // as if the sweep was killed during this run
  r = run_flowrun({"ablate", file, "--out", out, "--dry-run"}, -1, SIGINT, 120);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "scratch-4-s6: interrupted (resumes from its newest checkpoint)");
  r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 300);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "run 1/1: scratch-4-s6");
  expect_contains(read_file(out + "/scratch-4-s6/console.log"), "resuming from");

  r = run_flowrun({"ablate", file, "--out", out, "--report-only", "--rows", "init"}, -1, SIGINT, 60);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out.find("run 1/"), std::string::npos) << r.out;
  expect_contains(read_file(out + "/ablation.md"), "| init \\ per_class | 4 | 8 |");

  // The file changed after its runs: its finished folders are not its runs any more.
  std::string changed = read_file(file);
  changed.replace(changed.find("batch_size=8"), 12, "batch_size=4");
  dir.write("grid.json", changed);
  r = run_flowrun({"ablate", file, "--out", out}, -1, SIGINT, 60);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  expect_contains(r.err, "4 run folder(s) were made by another description");
  expect_contains(r.err, "pretrained-4-s5: /nodes/");
  expect_contains(r.err, "/params/batch_size: 8 there, 4 now");
  EXPECT_EQ(r.err.find("scratch-8-s5:"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("run 1/"), std::string::npos) << r.out;
}

// A prepared run that fails stops the sweep before any of the runs that need it.
TEST(Ablation, AFailedPreparedRunStopsTheSweep) {
  TempDir dir;
  tiny_base(dir);
  const std::string file = dir.write("grid.json", R"({"name": "grid", "base": "base.json", "seeds": [0],
    "prepare": [{"name": "pretrain", "pipeline": "base.json", "set": ["nodes.data.params.paths=[\"/nonexistent/data.tar\"]"]}],
    "variants": [{"name": "a"}]})");
  const auto r = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep"}, -1, SIGINT, 120);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  expect_contains(r.out + r.err, "prepared run prepare/pretrain failed");
  expect_contains(r.out + r.err, "the sweep stops");
  EXPECT_FALSE(fs::exists(dir.path() + "/sweep/a-s0"));
}

// A one-run sweep whose prepared run lives in DIR/shared_pretrain (made, empty), as when
// another sweep shares it.
std::string shared_prepare_sweep(const TempDir& dir) {
  tiny_base(dir);
  fs::create_directories(dir.path() + "/shared_pretrain");
  return dir.write("grid.json", R"({"name": "grid", "base": "base.json", "seeds": [0],
    "prepare": [{"name": "pretrain", "pipeline": "base.json", "run_dir": ")" + dir.path() + R"(/shared_pretrain"}],
    "variants": [{"name": "a"}]})");
}

// A prepared run that failed in an earlier session stops the sweep too (it is kept as
// failed, so it does not run again, and every run needs it).
TEST(Ablation, APreparedRunThatFailedEarlierStopsTheSweep) {
  TempDir dir;
  const std::string file = shared_prepare_sweep(dir);
  const std::string shared = dir.path() + "/shared_pretrain";
  std::ofstream(shared + "/run.json") << R"({"reason": "failed", "error": "out of memory"})";
  const auto r = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep"}, -1, SIGINT, 60);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  expect_contains(r.out + r.err, "prepared run prepare/pretrain: out of memory (failed earlier");
  EXPECT_FALSE(fs::exists(dir.path() + "/sweep/a-s0"));
}

// A run folder another runner holds (a prepared run shared by two sweeps) is not
// resumed a second time: the sweep says who holds it and stops before running anything.
TEST(Ablation, ARunFolderAnotherSweepHoldsIsNotRunTwice) {
  TempDir dir;
  const std::string file = shared_prepare_sweep(dir);
  const std::string shared = dir.path() + "/shared_pretrain";
  const int fd = ::open((shared + "/.ablate.lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  auto r = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep", "--dry-run"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  expect_contains(r.out + r.err, "prepare/pretrain: running (by another flowrun ablate)");
  r = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep"}, -1, SIGINT, 60);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  expect_contains(r.out + r.err, "is being run by another flowrun ablate");
  EXPECT_FALSE(fs::exists(shared + "/run.json"));
  EXPECT_FALSE(fs::exists(dir.path() + "/sweep/a-s0"));
  ::close(fd);
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
  const auto unknown = run_flowrun({"ablate", file, "--out", dir.path() + "/sweep", "--set", "nodes.x.params.p=${prepare.nope}"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.out << unknown.err;
  expect_contains(unknown.err, "--set: 'nodes.x.params.p=${prepare.nope}': ${prepare.nope} names no prepared run");
}

}  // namespace
}  // namespace flowrun::testing
