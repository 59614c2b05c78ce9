// The reports of an ablation sweep: ablation.md (the tables to paste into a README),
// ablation.csv (one row per cell), ablation_runs.csv (one per run),
// ablation_differences.csv (every paired comparison, along every axis) and
// ablation.html (self-contained: curves, the tables, intervals, the metric against a
// numeric axis).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "ablation.hpp"
#include "lib/io/csv.hpp"
#include "stages/monitor/html_charts.hpp"

namespace flowrun::ablation {
namespace {

// Accuracies and F1 scores read as percentages; anything else as it is.
bool as_percent(const std::string& metric) {
  return metric.find("accuracy") != std::string::npos || metric.find("f1") != std::string::npos;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

std::string metric_value(const std::string& metric, double v) {
  return as_percent(metric) ? fixed(100 * v, 2) : fixed(v, 4);
}

std::string signed_value(const std::string& metric, double v) {
  return std::isfinite(v) ? (v >= 0 ? "+" : "") + metric_value(metric, v) : "-";
}

std::string metric_stat(const std::string& metric, const Stat& s) {
  if (s.n == 0) return "-";
  const std::string mean = metric_value(metric, s.mean);
  return s.n > 1 ? mean + " ± " + metric_value(metric, s.std) : mean;
}

std::string metric_header(const std::string& metric) { return metric + (as_percent(metric) ? " (%)" : ""); }

// "+1.23 [-0.40, +2.86]"; one pair gives the difference alone.
std::string interval_text(const std::string& metric, const Interval& i) {
  if (i.n == 0) return "-";
  if (!i.defined()) return signed_value(metric, i.mean) + " (1 seed)";
  return signed_value(metric, i.mean) + " [" + signed_value(metric, i.lo) + ", " + signed_value(metric, i.hi) + "]";
}

std::string joined(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : separator) + p;
  return out;
}

std::string resolved_text(const Interval& i) {
  if (!i.defined()) return "-";
  return i.excludes_zero() ? "yes" : "no (n = " + std::to_string(i.n) + ")";
}

std::string overrides_text(const std::vector<std::string>& overrides) {
  std::string out;
  for (const std::string& o : overrides) out += (out.empty() ? "" : " ") + o;
  return out.empty() ? "(the base pipeline as it is)" : out;
}

std::string seeds_text(const Spec& spec) {
  std::string out;
  for (std::uint64_t s : spec.seeds) out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out;
}

std::string csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

// "crop_flip" for the one-axis form, "strategy=full_ft" otherwise.
std::string baseline_name(const Spec& spec, std::size_t axis) {
  const Axis& a = spec.axes[axis];
  const std::string& entry = a.entries[a.baseline].name;
  return spec.axes.size() == 1 ? entry : a.name + "=" + entry;
}

// "overfitting 3/3": the train stage's findings and in how many finished runs they fired.
std::string diagnoses_text(const CellSummary& s) {
  std::string out;
  for (const auto& [kind, count] : s.diagnoses)
    out += (out.empty() ? "" : ", ") + kind + " " + std::to_string(count) + "/" + std::to_string(s.finished);
  return out.empty() ? "-" : out;
}

std::string delta_header(const Spec& spec) { return "Δ final vs " + baseline_name(spec, spec.rows) + " (95% CI)"; }

using Table = std::vector<std::vector<std::string>>;  // the header row first

// One row per cell: its entries, runs, final and best, the paired difference along the
// rows axis, throughput, stall and wall time.
Table cell_table(const Spec& spec, const Report& report) {
  Table t;
  std::vector<std::string> header;
  for (const Axis& a : spec.axes) header.push_back(a.name);
  for (const std::string& h : {std::string("runs"), "final " + metric_header(spec.metric), "best " + metric_header(spec.metric),
                               delta_header(spec), std::string("resolved"), std::string("train accuracy (%)"),
                               std::string("images/s"),
                               std::string("data stall"), std::string("wall (min)"), std::string("diagnoses")})
    header.push_back(h);
  t.push_back(header);
  for (std::size_t c = 0; c < spec.cells.size(); ++c) {
    const CellSummary& s = report.cells[c];
    std::vector<std::string> row;
    for (std::size_t a = 0; a < spec.axes.size(); ++a) row.push_back(spec.entry(spec.cells[c], a).name);
    std::string runs = std::to_string(s.finished) + "/" + std::to_string(spec.seeds.size());
    if (s.failed) runs += " (" + std::to_string(s.failed) + " failed)";
    const Comparison* cmp = report.find(spec.rows, c);
    for (const std::string& v :
         {runs, metric_stat(spec.metric, s.final_metric), metric_stat(spec.metric, s.best_metric),
          cmp ? interval_text(spec.metric, cmp->difference) : std::string("baseline"),
          cmp ? resolved_text(cmp->difference) : std::string("-"), fixed(100 * s.train_accuracy.mean, 1),
          fixed(s.images_per_s.mean, 0),
          s.data_stall.n ? fixed(100 * s.data_stall.mean, 1) + "%" : "-", fixed(s.wall_s.mean / 60, 1),
          diagnoses_text(s)})
      row.push_back(v);
    t.push_back(row);
  }
  return t;
}

// The pivots: for each combination of the axes other than rows and cols, the final
// metric and the paired difference along the rows axis, rows x cols.
struct Pivot {
  std::string title;  // "" or "augment=none, ..." for the other axes
  Table finals, deltas;
};

// One cell per combination of the axes other than rows and cols (its rows and cols
// entries the first), each with its "AXIS=ENTRY, ..." title: the groups the pivot tables
// and the charts against the cols axis are drawn for.
std::vector<std::pair<const Cell*, std::string>> other_axes_groups(const Spec& spec) {
  std::vector<std::pair<const Cell*, std::string>> groups;
  for (const Cell& first : spec.cells) {
    if (first.entries[spec.rows] != 0 || first.entries[spec.cols] != 0) continue;
    std::string title;
    for (std::size_t a = 0; a < spec.axes.size(); ++a)
      if (a != spec.rows && a != spec.cols) title += (title.empty() ? "" : ", ") + spec.axes[a].name + "=" + spec.entry(first, a).name;
    groups.emplace_back(&first, title);
  }
  return groups;
}

std::vector<Pivot> pivots(const Spec& spec, const Report& report) {
  std::vector<Pivot> out;
  if (spec.cols == kNoAxis) return out;
  const Axis& rows = spec.axes[spec.rows];
  const Axis& cols = spec.axes[spec.cols];
  for (const auto& [group, title] : other_axes_groups(spec)) {
    const Cell& first = *group;
    Pivot p;
    p.title = title;
    std::vector<std::string> header = {rows.name + " \\ " + cols.name};
    for (const Entry& e : cols.entries) header.push_back(e.name);
    p.finals.push_back(header);
    p.deltas.push_back(header);
    for (std::size_t r = 0; r < rows.entries.size(); ++r) {
      std::vector<std::string> finals = {rows.entries[r].name}, deltas = finals;
      for (std::size_t c = 0; c < cols.entries.size(); ++c) {
        std::vector<std::size_t> entries = first.entries;
        entries[spec.rows] = r;
        entries[spec.cols] = c;
        const std::size_t cell = spec.cell_index(entries);
        finals.push_back(metric_stat(spec.metric, report.cells[cell].final_metric));
        const Comparison* cmp = report.find(spec.rows, cell);
        std::string d = cmp ? interval_text(spec.metric, cmp->difference) : "baseline";
        if (cmp && cmp->difference.defined() && !cmp->difference.excludes_zero()) d += " n.r.";
        deltas.push_back(d);
      }
      p.finals.push_back(finals);
      p.deltas.push_back(deltas);
    }
    out.push_back(std::move(p));
  }
  return out;
}

void markdown_table(std::ostringstream& o, const Table& t, std::size_t text_columns) {
  for (std::size_t r = 0; r < t.size(); ++r) {
    o << "|";
    for (const std::string& c : t[r]) o << " " << c << " |";
    o << "\n";
    if (r == 0) {
      o << "|";
      for (std::size_t i = 0; i < t[0].size(); ++i) o << (i < text_columns ? "---|" : "---:|");
      o << "\n";
    }
  }
}

void html_table(std::ostringstream& o, const Table& t, const std::string& id) {
  o << "<table class=\"scores\" id=\"" << id << "\">";
  for (std::size_t r = 0; r < t.size(); ++r) {
    o << "<tr>";
    for (const std::string& c : t[r]) o << (r == 0 ? "<th>" : "<td>") << html::escape(c) << (r == 0 ? "</th>" : "</td>");
    o << "</tr>";
  }
  o << "</table>";
}

std::string prepared_state(const Spec& spec, const Report& report, std::size_t i) {
  if (i >= report.prepared.size()) return "not run";
  const RunResult& r = report.prepared[i];
  std::string state = r.state;
  if (std::isfinite(r.final_metric)) state += ", final " + spec.metric + " " + metric_value(spec.metric, r.final_metric);
  return state;
}

// Every entry's overrides, axis by axis.
void entries_markdown(std::ostringstream& o, const Spec& spec) {
  o << "\nOverrides (`--set` on the base pipeline";
  if (!spec.overrides.empty()) {
    o << ", after";
    for (const std::string& s : spec.overrides) o << " `" << s << "`";
  }
  o << "):\n\n";
  for (const Axis& a : spec.axes)
    for (const Entry& e : a.entries)
      o << "- " << (spec.axes.size() > 1 ? a.name + " " : "") << "**" << e.name << "**: `" << overrides_text(e.overrides)
        << "`" << (e.note.empty() ? "" : " — " + e.note) << "\n";
}

bool numeric(const std::string& text, double& value) {
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && std::isfinite(value);
}

}  // namespace

std::string render_markdown(const Spec& spec, const Report& report) {
  std::ostringstream o;
  o << "# Ablation: " << spec.name << "\n\n"
    << "Base pipeline `" << spec.base << "`, seeds " << seeds_text(spec)
    << ". Final = the last evaluation's eval " << spec.metric << ", best = the best evaluation's; mean ± sample standard "
       "deviation over the seeds that finished. Δ: the difference of the final metric to the baseline run with the same "
       "seed, its mean over seeds and 95% confidence interval (Student's t, n − 1 degrees of freedom); not resolved "
       "(n.r.) when the interval includes 0. images/s: median of the run's training windows; data stall: the share of "
       "the train stage's active time it waited for batches; wall: per run.";
  if (!report.machine.empty()) o << " Measured on " << report.machine << ".";
  o << "\n\n";
  if (!spec.prepare.empty()) {
    o << "Prepared runs (once, before the others):\n\n";
    for (std::size_t i = 0; i < spec.prepare.size(); ++i) {
      const Prepared& p = spec.prepare[i];
      o << "- **" << p.name << "** (" << prepared_state(spec, report, i) << "): `" << p.pipeline << "` `"
        << overrides_text(p.overrides) << "`" << (p.note.empty() ? "" : " — " + p.note) << "\n";
    }
    o << "\n";
  }
  markdown_table(o, cell_table(spec, report), spec.axes.size());
  for (const Pivot& p : pivots(spec, report)) {
    const std::string where = p.title.empty() ? "" : " (" + p.title + ")";
    o << "\n## Final " << metric_header(spec.metric) << ": " << spec.axes[spec.rows].name << " × "
      << spec.axes[spec.cols].name << where << "\n\n";
    markdown_table(o, p.finals, 1);
    o << "\n## Δ final vs " << baseline_name(spec, spec.rows) << ", paired by seed (95% CI)" << where << "\n\n";
    markdown_table(o, p.deltas, 1);
  }
  entries_markdown(o, spec);
  return o.str();
}

std::string render_csv(const Spec& spec, const Report& report) {
  std::ostringstream o;
  for (const Axis& a : spec.axes) o << csv_field(a.name) << ",";
  o << "runs,finished,failed,metric,final_mean,final_std,final_ci_lo,final_ci_hi,best_mean,best_std,images_per_s,"
       "data_stall,wall_s,overrides\n";
  for (std::size_t c = 0; c < spec.cells.size(); ++c) {
    const CellSummary& s = report.cells[c];
    std::vector<std::string> overrides;
    for (std::size_t a = 0; a < spec.axes.size(); ++a) {
      o << csv_field(spec.entry(spec.cells[c], a).name) << ",";
      const auto& e = spec.entry(spec.cells[c], a).overrides;
      overrides.insert(overrides.end(), e.begin(), e.end());
    }
    o << spec.seeds.size() << "," << s.finished << "," << s.failed << "," << csv_field(spec.metric) << ","
      << csv_number(s.final_metric.mean) << "," << csv_number(s.final_metric.std) << ","
      << csv_number(s.final_interval.lo) << "," << csv_number(s.final_interval.hi) << ","
      << csv_number(s.best_metric.mean) << "," << csv_number(s.best_metric.std) << "," << csv_number(s.images_per_s.mean)
      << "," << csv_number(s.data_stall.mean) << "," << csv_number(s.wall_s.mean) << ","
      << csv_field(overrides_text(overrides)) << "\n";
  }
  return o.str();
}

std::string render_runs_csv(const Spec& spec, const Report& report) {
  std::ostringstream o;
  for (const Axis& a : spec.axes) o << csv_field(a.name) << ",";
  o << "seed,state,metric,final,best,train_accuracy,images_per_s,data_stall,wall_s,diagnoses,folder\n";
  for (const RunResult& r : report.runs) {
    for (std::size_t a = 0; a < spec.axes.size(); ++a) o << csv_field(spec.entry(spec.cells[r.cell], a).name) << ",";
    o << r.seed << "," << r.state << "," << csv_field(spec.metric) << "," << csv_number(r.final_metric) << ","
      << csv_number(r.best_metric) << "," << csv_number(r.train_accuracy) << "," << csv_number(r.images_per_s) << ","
      << csv_number(r.data_stall) << "," << csv_number(r.wall_s) << "," << csv_field(joined(r.diagnoses, ";")) << ","
      << csv_field(r.folder) << "\n";
  }
  return o.str();
}

std::string render_differences_csv(const Spec& spec, const Report& report) {
  std::ostringstream o;
  o << "axis,cell,baseline,metric,n,mean,ci_lo,ci_hi,resolved,seeds,per_seed\n";
  for (const Comparison& c : report.comparisons) {
    std::string seeds, per_seed;
    for (std::size_t i = 0; i < c.seeds.size(); ++i) {
      seeds += (i ? ";" : "") + std::to_string(c.seeds[i]);
      per_seed += (i ? ";" : "") + csv_number(c.per_seed[i]);
    }
    o << csv_field(spec.axes[c.axis].name) << "," << csv_field(spec.cells[c.cell].name) << ","
      << csv_field(spec.cells[c.baseline].name) << "," << csv_field(spec.metric) << "," << c.difference.n << ","
      << csv_number(c.difference.mean) << "," << csv_number(c.difference.lo) << "," << csv_number(c.difference.hi) << ","
      << (c.difference.defined() ? (c.difference.excludes_zero() ? "yes" : "no") : "") << "," << seeds << ","
      << per_seed << "\n";
  }
  return o.str();
}

std::string render_html(const Spec& spec, const Report& report) {
  using html::escape;
  const double scale = as_percent(spec.metric) ? 100 : 1;
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ablation " << escape(spec.name) << "</title><style>"
    << html::kPageStyle << "</style></head><body>";
  o << "<h1>Ablation: " << escape(spec.name) << "</h1><div class=\"sub\">base pipeline " << escape(spec.base) << " · seeds "
    << seeds_text(spec) << " · eval " << escape(spec.metric) << ": mean ± sample std over seeds, differences paired by "
    << "seed with 95% intervals" << (report.machine.empty() ? "" : " · " + escape(report.machine)) << "</div>";

  // The metric against a numeric cols axis: one line per rows entry, its 95% band.
  if (spec.cols != kNoAxis) {
    const Axis& cols = spec.axes[spec.cols];
    std::vector<double> xs;
    for (const Entry& e : cols.entries) {
      double x = 0;
      if (numeric(e.name, x)) xs.push_back(x);
    }
    std::vector<std::size_t> by_x(xs.size());  // the entries in the order of their values
    for (std::size_t i = 0; i < by_x.size(); ++i) by_x[i] = i;
    std::sort(by_x.begin(), by_x.end(), [&](std::size_t a, std::size_t b) { return xs[a] < xs[b]; });
    if (xs.size() == cols.entries.size() && xs.size() >= 2) {
      double lo = xs.front(), hi = xs.front();
      for (double x : xs) lo = std::min(lo, x), hi = std::max(hi, x);
      const bool log_x = lo > 0 && hi / lo >= 20;  // sizes that grow by factors read on a log axis
      o << "<h2>Final " << escape(metric_header(spec.metric)) << " against " << escape(cols.name) << "</h2><div class=\"charts\">";
      std::size_t chart = 0;
      for (const auto& [cell, others] : other_axes_groups(spec)) {
        const Cell& first = *cell;
        const std::string title = "final " + metric_header(spec.metric) + ", mean and 95% CI" + (others.empty() ? "" : ", " + others);
        std::vector<html::Series> series;
        for (std::size_t r = 0; r < spec.axes[spec.rows].entries.size(); ++r) {
          html::Series s{spec.axes[spec.rows].entries[r].name, html::palette(r), {}, true, {}};
          for (std::size_t c : by_x) {
            std::vector<std::size_t> entries = first.entries;
            entries[spec.rows] = r;
            entries[spec.cols] = c;
            const CellSummary& cs = report.cells[spec.cell_index(entries)];
            s.points.emplace_back(xs[c], cs.final_metric.mean * scale);
            s.band.emplace_back(cs.final_interval.lo * scale, cs.final_interval.hi * scale);
          }
          series.push_back(std::move(s));
        }
        o << html::line_chart("against-" + std::to_string(chart++), title, series,
                              cols.name + (log_x ? " (log scale)" : ""), log_x);
      }
      o << "</div>";
    }
  }

  std::vector<html::IntervalRow> intervals;
  for (const Comparison& c : report.comparisons) {
    if (c.axis != spec.rows) continue;
    intervals.push_back({spec.cells[c.cell].name, html::palette(spec.cells[c.cell].entries[spec.rows]),
                         c.difference.mean * scale, c.difference.lo * scale, c.difference.hi * scale});
  }
  if (!intervals.empty())
    o << "<h2>Paired differences</h2><div class=\"charts\">"
      << html::interval_chart("differences", "Δ final vs " + baseline_name(spec, spec.rows) + ", 95% CI (grey: includes 0)",
                              intervals, "Δ " + metric_header(spec.metric))
      << "</div>";

  std::vector<html::Series> curves, losses, train_losses;
  std::vector<html::Bar> final_bars, rate_bars;
  for (std::size_t c = 0; c < spec.cells.size(); ++c) {
    const CellSummary& s = report.cells[c];
    const std::string& name = spec.cells[c].name;
    auto series_of = [&](const Curve& curve, double factor) {
      html::Series series{name, html::palette(c), {}, true, {}};
      for (const auto& [step, value] : curve) series.points.emplace_back(step, value * factor);
      return series;
    };
    curves.push_back(series_of(s.mean_curve, scale));
    losses.push_back(series_of(s.mean_loss_curve, 1));
    train_losses.push_back(series_of(s.mean_train_loss_curve, 1));
    final_bars.push_back({name, html::palette(c), s.final_metric.mean * scale,
                          std::isfinite(s.final_metric.std) ? s.final_metric.std * scale : 0.0});
    rate_bars.push_back({name, html::palette(c), s.images_per_s.mean, std::isfinite(s.images_per_s.std) ? s.images_per_s.std : 0.0});
  }
  // Training loss falling while validation loss rises is overfitting: the two side by side.
  o << "<h2>Training and validation curves</h2><div class=\"charts\">"
    << html::line_chart("curves", "eval " + metric_header(spec.metric) + ", mean over seeds", curves)
    << html::line_chart("eval-loss", "eval loss, mean over seeds", losses)
    << html::line_chart("train-loss", "training loss (mean since the evaluation before)", train_losses) << "</div>";
  o << "<h2>Summary</h2>";
  html_table(o, cell_table(spec, report), "summary");
  const std::vector<Pivot> tables = pivots(spec, report);
  for (std::size_t i = 0; i < tables.size(); ++i) {
    const Pivot& p = tables[i];
    const std::string where = p.title.empty() ? "" : " (" + p.title + ")";
    const std::string suffix = i == 0 ? "" : "-" + std::to_string(i);
    o << "<h2>Final " << escape(metric_header(spec.metric)) << escape(where) << "</h2>";
    html_table(o, p.finals, "pivot-final" + suffix);
    o << "<h2>Δ final vs " << escape(baseline_name(spec, spec.rows)) << ", paired by seed (95% CI)" << escape(where)
      << "</h2>";
    html_table(o, p.deltas, "pivot-delta" + suffix);
  }
  o << "<div class=\"charts\">"
    << html::bar_chart("final", "final eval " + metric_header(spec.metric) + " (± std)", final_bars)
    << html::bar_chart("throughput", "training images/s (± std)", rate_bars) << "</div>";
  o << "<h2>Overrides</h2><ul>";
  for (std::size_t i = 0; i < spec.prepare.size(); ++i)
    o << "<li>prepared <b>" << escape(spec.prepare[i].name) << "</b> (" << escape(prepared_state(spec, report, i))
      << "): <code>" << escape(spec.prepare[i].pipeline) << " " << escape(overrides_text(spec.prepare[i].overrides))
      << "</code></li>";
  for (const Axis& a : spec.axes)
    for (const Entry& e : a.entries)
      o << "<li>" << escape(spec.axes.size() > 1 ? a.name + " " : "") << "<b>" << escape(e.name) << "</b>: <code>"
        << escape(overrides_text(e.overrides)) << "</code>" << (e.note.empty() ? "" : " — " + escape(e.note)) << "</li>";
  o << "</ul><h2>Runs</h2><table class=\"scores\" id=\"runs\"><tr><th>run</th><th>seed</th><th>state</th><th>final</th>"
       "<th>best</th><th>images/s</th><th>wall (min)</th><th>folder</th></tr>";
  std::vector<const RunResult*> every;
  for (const RunResult& r : report.prepared) every.push_back(&r);
  for (const RunResult& r : report.runs) every.push_back(&r);
  for (const RunResult* run : every) {
    const RunResult& r = *run;
    o << "<tr><td>" << escape(r.name) << "</td><td>" << r.seed << "</td><td>" << escape(r.state)
      << (r.error.empty() ? "" : ": " + escape(r.error.substr(0, 200))) << "</td><td>" << metric_value(spec.metric, r.final_metric)
      << "</td><td>" << metric_value(spec.metric, r.best_metric) << "</td><td>" << fixed(r.images_per_s, 0) << "</td><td>"
      << fixed(r.wall_s / 60, 1) << "</td><td>" << escape(r.folder) << "</td></tr>";
  }
  o << "</table></body></html>\n";
  return o.str();
}

}  // namespace flowrun::ablation
