// Ablation sweeps (`flowrun ablate FILE`): the file format, what one run left in its
// run folder, and the per-variant summary over seeds with its three reports
// (ablation.md, ablation.csv, ablation.html). The runner itself is cmd_ablate.cpp.
//
// An ablation file (JSON; // comments allowed):
//   {
//     "name": "quickstart_augment",
//     "base": "../quickstart.json",          // relative to this file
//     "seeds": [0, 1],
//     "set": ["nodes.train_data.params.epochs=3"],   // optional: every run gets these
//     "metric": "accuracy",                  // optional: the eval metric tabulated
//     "variants": [
//       {"name": "crop_flip", "set": []},
//       {"name": "randaugment", "set": ["nodes.augment.plugin=randaugment"]}
//     ]
//   }
// Each (variant, seed) runs `flowrun run BASE --set ... --set seed=S` in OUT/VARIANT-sS/.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flowrun::ablation {

struct Variant {
  std::string name;
  std::vector<std::string> overrides;  // --set PATH=VALUE, in order
  std::string note;                    // optional, shown in the reports
};

struct Spec {
  std::string name;
  std::string file;   // the ablation file as given
  std::string base;   // the base pipeline, resolved against the file's folder
  std::vector<std::string> overrides;  // for every run, before the variant's
  std::vector<std::uint64_t> seeds;
  std::string metric = "accuracy";
  std::vector<Variant> variants;

  // Every override of one run: the common ones, the variant's, then seed=S.
  std::vector<std::string> run_overrides(const Variant& v, std::uint64_t seed) const;
  static std::string run_name(const Variant& v, std::uint64_t seed);  // "VARIANT-sS"
};

// Reads and checks an ablation file; throws std::runtime_error naming the file, the
// entry and what was expected.
Spec parse_spec(const std::string& path);
Spec parse_spec_text(const std::string& text, const std::string& path);

// What one run folder says about its run.
struct RunResult {
  std::string variant;
  std::uint64_t seed = 0;
  std::string folder;
  std::string state = "not run";  // not run | running | finished | failed | interrupted
  std::string error;              // for failed runs: run.json's error
  std::vector<std::pair<double, double>> curve;  // (step, metric) of every eval record
  double final_metric;   // the last eval record's metric (NaN when none)
  double best_metric;    // the best of them (max, or min for losses)
  double images_per_s;   // median of the train records' images_per_s
  double data_stall;     // the train stage's share of its active time spent waiting for batches (run.json)
  double wall_s;         // wall time over every session the runner started (ablate_run.json)
  std::int64_t step = 0, total_steps = 0;  // progress: the newest train record
  RunResult();
};

bool lower_is_better(const std::string& metric);  // losses
RunResult read_run(const std::string& folder, const std::string& variant, std::uint64_t seed, const std::string& metric);

// Mean and sample standard deviation (0 for one value); NaNs are left out.
struct Stat {
  double mean, std;
  std::size_t n = 0;
  Stat();
};
Stat stat_of(const std::vector<double>& values);

struct VariantSummary {
  const Variant* variant = nullptr;
  std::size_t runs = 0, finished = 0, failed = 0;
  Stat final_metric, best_metric, images_per_s, data_stall, wall_s;
  std::vector<std::pair<double, double>> mean_curve;  // at the steps every finished seed evaluated
};

std::vector<VariantSummary> summarize(const Spec& spec, const std::vector<RunResult>& runs);

std::string render_markdown(const Spec& spec, const std::vector<VariantSummary>& summary, const std::string& machine);
std::string render_csv(const Spec& spec, const std::vector<VariantSummary>& summary);
std::string render_runs_csv(const Spec& spec, const std::vector<RunResult>& runs);
std::string render_html(const Spec& spec, const std::vector<VariantSummary>& summary, const std::vector<RunResult>& runs,
                        const std::string& machine);

}  // namespace flowrun::ablation
