// Ablation sweeps (`flowrun ablate FILE`): the file format, what one run left in its
// run folder, the summary per cell over seeds, the paired comparisons and the reports
// (ablation.md, ablation.csv, ablation_runs.csv, ablation_differences.csv,
// ablation.html). The runner itself is cmd_ablate.cpp; docs/ablations.md the manual.
//
// An ablation file (JSON; // comments allowed):
//   {
//     "name": "strategy_vs_data",
//     "base": "../vit_micro_cifar10_fullft.json",   // relative to this file
//     "seeds": [0, 1, 2],
//     "set": ["nodes.train.params.log_every=50"],   // optional: every run gets these
//     "metric": "accuracy",                          // optional: the eval metric tabulated
//     "prepare": [{"name": "pretrain", "pipeline": "../vit_micro_tinyimagenet_pretrain.json",
//                  "set": ["nodes.train.params.export=${prepare.pretrain}/export"]}],
//     "axes": {
//       "strategy": [{"name": "full_ft", "set": ["nodes.train.params.pretrained=${prepare.pretrain}/export"]},
//                    {"name": "scratch", "set": ["nodes.train.params.pretrained=\"\""]}],
//       "per_class": [{"name": "10", "set": ["nodes.train_data.params.per_class_limit=10"]},
//                     {"name": "100", "set": ["nodes.train_data.params.per_class_limit=100"]}]
//     },
//     "baseline": {"strategy": "full_ft"},   // optional: else every axis's first entry
//     "rows": "strategy", "cols": "per_class"  // optional: the pivot tables
//   }
// "variants": [...] is the one-axis form (an axis named "variant"); with "axes" beside
// it, it is one more axis, the first. Each (cell, seed) runs `flowrun run BASE --set ...
// --set seed=S` in OUT/ENTRY1-ENTRY2-sS/; each prepared run once, before them, in
// OUT/prepare/NAME/, whose path ${prepare.NAME} stands for in any override.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "ablation_stats.hpp"

namespace flowrun::ablation {

// One value of an axis: a name (in run folder names) and the overrides that make it.
struct Entry {
  std::string name;
  std::vector<std::string> overrides;  // --set PATH=VALUE, in order
  std::string note;                    // optional, shown in the reports
};

struct Axis {
  std::string name;
  std::vector<Entry> entries;
  std::size_t baseline = 0;  // the entry every other one is compared with
};

// A run that happens once, before the sweep's runs, which can name its folder.
struct Prepared {
  std::string name;
  std::string pipeline;                // resolved against the ablation file's folder
  std::vector<std::string> overrides;  // may name ${prepare.THIS} and earlier prepared runs
  std::string note;
  std::string run_dir;  // optional: its folder (relative to the working folder, as --out), so that
                        // sweeps can share it; default OUT/prepare/NAME
};

// One combination of entries, one per axis.
struct Cell {
  std::vector<std::size_t> entries;  // index into each axis's entries
  std::string name;                  // the entries' names joined by '-'
};

constexpr std::size_t kNoAxis = static_cast<std::size_t>(-1);

struct Spec {
  std::string name;
  std::string file;   // the ablation file as given
  std::string base;   // the base pipeline, resolved against the file's folder
  std::vector<std::string> overrides;  // for every run, before the cell's
  std::vector<std::uint64_t> seeds;
  std::string metric = "accuracy";
  std::vector<Prepared> prepare;
  std::vector<Axis> axes;
  std::vector<Cell> cells;  // the product of the axes' entries, the first axis slowest
  std::size_t rows = 0;        // the pivot: rows one axis, columns another (kNoAxis with one axis)
  std::size_t cols = kNoAxis;

  // Every override of one run: the common ones, each axis's entry's in the axes' order,
  // then seed=S. ${prepare.NAME} is left for the runner to resolve.
  std::vector<std::string> run_overrides(const Cell& cell, std::uint64_t seed) const;
  static std::string run_name(const Cell& cell, std::uint64_t seed);  // "ENTRY1-ENTRY2-sS"
  const Entry& entry(const Cell& cell, std::size_t axis) const { return axes[axis].entries[cell.entries[axis]]; }
  std::size_t cell_index(const std::vector<std::size_t>& entries) const;
  std::size_t axis_index(const std::string& axis_name) const;  // kNoAxis when none has the name
  // Choose the pivot by axis names (empty: keep); throws std::runtime_error naming the axes.
  void set_pivot(const std::string& rows_axis, const std::string& cols_axis);
};

// Reads and checks an ablation file; throws std::runtime_error naming the file, the
// entry and what was expected.
Spec parse_spec(const std::string& path);
Spec parse_spec_text(const std::string& text, const std::string& path);

// Replaces every ${prepare.NAME} in `text` by folders.at(NAME); throws naming an unknown one.
std::string substitute_prepared(const std::string& text, const std::map<std::string, std::string>& folders);

// What differs between the description a run folder recorded (its pipeline.json) and
// the one the file asks for now, both as JSON text; "" when they are the same. "note"
// and "description" keys (prose) do not count. At most `shown` differences are named
// ("/nodes/6/params/lr: 0.001 there, 0.002 now"), then how many more there are.
std::string description_differences(const std::string& recorded, const std::string& asked, std::size_t shown = 3);

using Curve = std::vector<std::pair<double, double>>;  // (step, value)

// What one run folder says about its run.
struct RunResult {
  std::size_t cell = 0;  // index into Spec::cells
  std::string name;      // the cell's name (or the prepared run's)
  std::uint64_t seed = 0;
  std::string folder;
  std::string state = "not run";  // not run | running | finished | failed | interrupted
  std::string error;              // for failed runs: run.json's error
  Curve curve;             // the metric of every eval record
  Curve loss_curve;        // the eval loss of every eval record
  Curve train_loss_curve;  // the training loss the eval records carry (since the evaluation before)
  std::vector<std::string> diagnoses;  // the train stage's findings ("overfitting", ...), each once
  double final_metric;   // the last eval record's metric (NaN when none)
  double best_metric;    // the best of them (max, or min for losses)
  double train_accuracy; // the last training epoch's accuracy (train_epoch records; NaN when none)
  double images_per_s;   // median of the train records' images_per_s
  double data_stall;     // the train stage's share of its active time spent waiting for batches (run.json)
  double wall_s;         // wall time over every session the runner started (ablate_run.json)
  std::int64_t step = 0, total_steps = 0;  // progress: the newest train record
  RunResult();
};

bool lower_is_better(const std::string& metric);  // losses
RunResult read_run(const std::string& folder, const std::string& metric);

struct CellSummary {
  std::size_t runs = 0, finished = 0, failed = 0;
  Stat final_metric, best_metric, train_accuracy, images_per_s, data_stall, wall_s;
  Interval final_interval;  // 95% interval of the mean final metric over seeds
  Curve mean_curve, mean_loss_curve, mean_train_loss_curve;  // at the steps every finished seed evaluated
  std::map<std::string, std::size_t> diagnoses;  // finding -> finished runs it fired in
};

// A cell against its baseline along one axis: the cell with the axis's baseline entry
// and the same entries on every other axis, paired by seed.
struct Comparison {
  std::size_t axis = 0, cell = 0, baseline = 0;
  Interval difference;                   // final metric, cell - baseline
  std::vector<std::uint64_t> seeds;      // the seeds both finished
  std::vector<double> per_seed;          // their differences
};

struct Report {
  std::vector<RunResult> runs;  // every (cell, seed), in Spec::cells order within each seed
  std::vector<RunResult> prepared;  // one per Spec::prepare entry
  std::vector<CellSummary> cells;  // one per Spec::cells entry
  std::vector<Comparison> comparisons;  // every cell off its baseline, along every axis
  std::string machine;
  const Comparison* find(std::size_t axis, std::size_t cell) const;  // nullptr for a baseline cell
};

Report analyse(const Spec& spec, std::vector<RunResult> runs, std::vector<RunResult> prepared, const std::string& machine);

std::string render_markdown(const Spec& spec, const Report& report);
std::string render_csv(const Spec& spec, const Report& report);
std::string render_runs_csv(const Spec& spec, const Report& report);
std::string render_differences_csv(const Spec& spec, const Report& report);
std::string render_html(const Spec& spec, const Report& report);

}  // namespace flowrun::ablation
