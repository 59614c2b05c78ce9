// What the run folders of a sweep say: one run's result from its metrics.jsonl and
// run.json, the summary of each cell over seeds, and the paired comparisons.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "ablation.hpp"

namespace flowrun::ablation {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

double median(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The mean curve over the steps every finished seed evaluated at (seeds of one cell
// share the schedule, so these are all of them unless early stopping differed).
Curve mean_curve(const std::vector<const RunResult*>& done, Curve RunResult::*which) {
  Curve mean;
  if (done.empty()) return mean;
  for (const auto& [step, value] : done.front()->*which) {
    std::vector<double> at_step;
    for (const RunResult* r : done)
      for (const auto& [s2, v2] : r->*which)
        if (s2 == step) at_step.push_back(v2);
    if (at_step.size() == done.size()) mean.emplace_back(step, stat_of(at_step).mean);
  }
  return mean;
}

CellSummary summarize(const std::vector<const RunResult*>& runs) {
  CellSummary s;
  std::vector<double> finals, bests, train_accuracies, rates, stalls, walls;
  std::vector<const RunResult*> done;
  for (const RunResult* r : runs) {
    ++s.runs;
    if (r->state == "failed") ++s.failed;
    if (r->state != "finished") continue;
    ++s.finished;
    done.push_back(r);
    finals.push_back(r->final_metric);
    bests.push_back(r->best_metric);
    train_accuracies.push_back(r->train_accuracy);
    rates.push_back(r->images_per_s);
    stalls.push_back(r->data_stall);
    walls.push_back(r->wall_s);
  }
  s.final_metric = stat_of(finals);
  s.final_interval = mean_interval(finals);
  s.best_metric = stat_of(bests);
  s.train_accuracy = stat_of(train_accuracies);
  s.images_per_s = stat_of(rates);
  s.data_stall = stat_of(stalls);
  s.wall_s = stat_of(walls);
  s.mean_curve = mean_curve(done, &RunResult::curve);
  s.mean_loss_curve = mean_curve(done, &RunResult::loss_curve);
  s.mean_train_loss_curve = mean_curve(done, &RunResult::train_loss_curve);
  for (const RunResult* r : done)
    for (const std::string& d : r->diagnoses) ++s.diagnoses[d];
  return s;
}

// The final metric of a cell's finished run with `seed` (NaN when it has none).
double final_of(const std::vector<RunResult>& runs, std::size_t cell, std::uint64_t seed) {
  for (const RunResult& r : runs)
    if (r.cell == cell && r.seed == seed && r.state == "finished") return r.final_metric;
  return kNaN;
}

}  // namespace

RunResult::RunResult()
    : final_metric(kNaN), best_metric(kNaN), train_accuracy(kNaN), images_per_s(kNaN), data_stall(kNaN), wall_s(kNaN) {}

bool lower_is_better(const std::string& metric) { return metric.find("loss") != std::string::npos; }

RunResult read_run(const std::string& folder, const std::string& metric) {
  RunResult r;
  r.folder = folder;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return r;
  r.state = "interrupted";  // a folder without a run.json: the run (or the sweep) was killed
  std::vector<double> rates;
  for (const std::string& line : read_lines((fs::path(folder) / "metrics.jsonl").string())) {
    json m;
    try {
      m = json::parse(line);
    } catch (const json::exception&) {
      continue;  // a line cut short by a kill
    }
    const std::string scope = m.value("scope", "");
    if (scope == "train") {
      r.step = m.value("step", std::int64_t{0});
      r.total_steps = static_cast<std::int64_t>(m.value("total_steps", 0.0));
      rates.push_back(m.value("images_per_s", kNaN));
    } else if (scope == "train_epoch") {
      r.train_accuracy = m.value("accuracy", kNaN);
    } else if (scope == "eval") {
      const double step = m.value("step", 0.0);
      if (m.contains(metric) && m[metric].is_number()) r.curve.emplace_back(step, m[metric].get<double>());
      if (m.contains("loss") && m["loss"].is_number()) r.loss_curve.emplace_back(step, m["loss"].get<double>());
      if (m.contains("train_loss") && m["train_loss"].is_number())
        r.train_loss_curve.emplace_back(step, m["train_loss"].get<double>());
    } else if (scope == "note" && m.contains("note") && m["note"].is_string()) {
      // "overfitting: validation loss rose ..." -> "overfitting"
      const std::string note = m["note"].get<std::string>();
      const std::string kind = note.substr(0, note.find(':'));
      if (std::find(r.diagnoses.begin(), r.diagnoses.end(), kind) == r.diagnoses.end()) r.diagnoses.push_back(kind);
    }
  }
  r.images_per_s = median(rates);
  if (!r.curve.empty()) {
    r.final_metric = r.curve.back().second;
    r.best_metric = r.curve.front().second;
    for (const auto& [step, value] : r.curve)
      r.best_metric = lower_is_better(metric) ? std::min(r.best_metric, value) : std::max(r.best_metric, value);
  }
  std::ifstream run_json(fs::path(folder) / "run.json");
  if (run_json) {
    try {
      const json j = json::parse(run_json);
      r.state = j.value("reason", "interrupted");
      r.error = j.value("error", "");
      const auto stalls = j.find("data_stall");  // one entry per train node: the first one's
      if (stalls != j.end() && stalls->is_object() && !stalls->empty()) r.data_stall = stalls->begin()->value("share", kNaN);
      r.wall_s = j.value("seconds", kNaN);
    } catch (const json::exception&) {
    }
  }
  std::ifstream sessions(fs::path(folder) / "ablate_run.json");
  if (sessions) {
    try {
      r.wall_s = json::parse(sessions).value("wall_s", r.wall_s);
    } catch (const json::exception&) {
    }
  }
  return r;
}

const Comparison* Report::find(std::size_t axis, std::size_t cell) const {
  for (const Comparison& c : comparisons)
    if (c.axis == axis && c.cell == cell) return &c;
  return nullptr;
}

Report analyse(const Spec& spec, std::vector<RunResult> runs, std::vector<RunResult> prepared, const std::string& machine) {
  Report report;
  report.runs = std::move(runs);
  report.prepared = std::move(prepared);
  report.machine = machine;
  for (std::size_t c = 0; c < spec.cells.size(); ++c) {
    std::vector<const RunResult*> of_cell;
    for (const RunResult& r : report.runs)
      if (r.cell == c) of_cell.push_back(&r);
    report.cells.push_back(summarize(of_cell));
  }
  for (std::size_t a = 0; a < spec.axes.size(); ++a) {
    for (std::size_t c = 0; c < spec.cells.size(); ++c) {
      const Cell& cell = spec.cells[c];
      if (cell.entries[a] == spec.axes[a].baseline) continue;
      std::vector<std::size_t> entries = cell.entries;
      entries[a] = spec.axes[a].baseline;
      Comparison cmp;
      cmp.axis = a;
      cmp.cell = c;
      cmp.baseline = spec.cell_index(entries);
      std::vector<double> ours, theirs;
      for (std::uint64_t seed : spec.seeds) {
        const double x = final_of(report.runs, c, seed), y = final_of(report.runs, cmp.baseline, seed);
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        cmp.seeds.push_back(seed);
        cmp.per_seed.push_back(x - y);
        ours.push_back(x);
        theirs.push_back(y);
      }
      cmp.difference = paired_difference(ours, theirs);
      report.comparisons.push_back(std::move(cmp));
    }
  }
  return report;
}

}  // namespace flowrun::ablation
