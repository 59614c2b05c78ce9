// The three reports of an ablation sweep: ablation.md (the table to paste into a
// README), ablation.csv (one row per variant; ablation_runs.csv one per run) and
// ablation.html (self-contained: validation curves, the table, bars with error bars).
#include <cmath>
#include <cstdio>
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

std::string metric_stat(const std::string& metric, const Stat& s) {
  if (s.n == 0) return "-";
  const std::string mean = metric_value(metric, s.mean);
  return s.n > 1 ? mean + " ± " + metric_value(metric, s.std) : mean;
}

std::string metric_header(const std::string& metric) { return metric + (as_percent(metric) ? " (%)" : ""); }

std::string delta(const std::string& metric, const VariantSummary& s, const VariantSummary& baseline) {
  if (&s == &baseline) return "baseline";
  if (s.final_metric.n == 0 || baseline.final_metric.n == 0) return "-";
  const double d = s.final_metric.mean - baseline.final_metric.mean;
  return (d >= 0 ? "+" : "") + metric_value(metric, d);
}

std::string overrides_text(const Variant& v) {
  std::string out;
  for (const std::string& o : v.overrides) out += (out.empty() ? "" : " ") + o;
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

struct Row {
  std::vector<std::string> cells;
};

std::vector<std::string> table_header(const Spec& spec) {
  return {"variant", "runs", "final " + metric_header(spec.metric), "best " + metric_header(spec.metric),
          "Δ final vs " + spec.variants.front().name, "images/s", "data stall", "wall (min)"};
}

std::vector<Row> table_rows(const Spec& spec, const std::vector<VariantSummary>& summary) {
  std::vector<Row> rows;
  for (const VariantSummary& s : summary) {
    std::string runs = std::to_string(s.finished) + "/" + std::to_string(spec.seeds.size());
    if (s.failed) runs += " (" + std::to_string(s.failed) + " failed)";
    rows.push_back({{s.variant->name, runs, metric_stat(spec.metric, s.final_metric), metric_stat(spec.metric, s.best_metric),
                     delta(spec.metric, s, summary.front()), fixed(s.images_per_s.mean, 0),
                     s.data_stall.n ? fixed(100 * s.data_stall.mean, 1) + "%" : "-", fixed(s.wall_s.mean / 60, 1)}});
  }
  return rows;
}

}  // namespace

std::string render_markdown(const Spec& spec, const std::vector<VariantSummary>& summary, const std::string& machine) {
  std::ostringstream o;
  o << "# Ablation: " << spec.name << "\n\n"
    << "Base pipeline `" << spec.base << "`, seeds " << seeds_text(spec) << ". Final = the last evaluation's eval "
    << spec.metric << ", best = the best evaluation's; mean ± sample standard deviation over the seeds that finished. "
    << "images/s: median of the run's training windows; data stall: the share of the train stage's active time it "
       "waited for batches; wall: per run.";
  if (!machine.empty()) o << " Measured on " << machine << ".";
  o << "\n\n|";
  for (const std::string& h : table_header(spec)) o << " " << h << " |";
  o << "\n|";
  for (std::size_t i = 0; i < table_header(spec).size(); ++i) o << (i == 0 ? "---|" : "---:|");
  o << "\n";
  for (const Row& row : table_rows(spec, summary)) {
    o << "|";
    for (const std::string& c : row.cells) o << " " << c << " |";
    o << "\n";
  }
  o << "\nVariants (`--set` on the base pipeline";
  if (!spec.overrides.empty()) {
    o << ", after";
    for (const std::string& s : spec.overrides) o << " `" << s << "`";
  }
  o << "):\n\n";
  for (const Variant& v : spec.variants)
    o << "- **" << v.name << "**: `" << overrides_text(v) << "`" << (v.note.empty() ? "" : " — " + v.note) << "\n";
  return o.str();
}

std::string render_csv(const Spec& spec, const std::vector<VariantSummary>& summary) {
  std::ostringstream o;
  o << "variant,runs,finished,failed,metric,final_mean,final_std,best_mean,best_std,images_per_s,data_stall,wall_s,"
       "overrides\n";
  for (const VariantSummary& s : summary) {
    o << csv_field(s.variant->name) << "," << spec.seeds.size() << "," << s.finished << "," << s.failed << ","
      << csv_field(spec.metric) << "," << csv_number(s.final_metric.mean) << "," << csv_number(s.final_metric.std) << ","
      << csv_number(s.best_metric.mean) << "," << csv_number(s.best_metric.std) << "," << csv_number(s.images_per_s.mean)
      << "," << csv_number(s.data_stall.mean) << "," << csv_number(s.wall_s.mean) << ","
      << csv_field(overrides_text(*s.variant)) << "\n";
  }
  return o.str();
}

std::string render_runs_csv(const Spec& spec, const std::vector<RunResult>& runs) {
  std::ostringstream o;
  o << "variant,seed,state,metric,final,best,images_per_s,data_stall,wall_s,folder\n";
  for (const RunResult& r : runs) {
    o << csv_field(r.variant) << "," << r.seed << "," << r.state << "," << csv_field(spec.metric) << ","
      << csv_number(r.final_metric) << "," << csv_number(r.best_metric) << "," << csv_number(r.images_per_s) << ","
      << csv_number(r.data_stall) << "," << csv_number(r.wall_s) << "," << csv_field(r.folder) << "\n";
  }
  return o.str();
}

std::string render_html(const Spec& spec, const std::vector<VariantSummary>& summary, const std::vector<RunResult>& runs,
                        const std::string& machine) {
  using html::escape;
  const double scale = as_percent(spec.metric) ? 100 : 1;
  std::vector<html::Series> curves;
  std::vector<html::Bar> final_bars, rate_bars;
  for (std::size_t i = 0; i < summary.size(); ++i) {
    const VariantSummary& s = summary[i];
    html::Series series{s.variant->name, html::palette(i), {}, true};
    for (const auto& [step, value] : s.mean_curve) series.points.emplace_back(step, value * scale);
    curves.push_back(std::move(series));
    final_bars.push_back({s.variant->name, html::palette(i), s.final_metric.mean * scale,
                          std::isfinite(s.final_metric.std) ? s.final_metric.std * scale : 0.0});
    rate_bars.push_back({s.variant->name, html::palette(i), s.images_per_s.mean,
                         std::isfinite(s.images_per_s.std) ? s.images_per_s.std : 0.0});
  }
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ablation " << escape(spec.name) << "</title><style>"
    << html::kPageStyle << "</style></head><body>";
  o << "<h1>Ablation: " << escape(spec.name) << "</h1><div class=\"sub\">base pipeline " << escape(spec.base) << " · seeds "
    << seeds_text(spec) << " · eval " << escape(spec.metric) << ", mean ± sample std over seeds"
    << (machine.empty() ? "" : " · " + escape(machine)) << "</div>";
  o << "<h2>Validation curves</h2><div class=\"charts\">"
    << html::line_chart("curves", "eval " + metric_header(spec.metric) + ", mean over seeds", curves) << "</div>";
  o << "<h2>Summary</h2><table class=\"scores\" id=\"summary\"><tr>";
  for (const std::string& h : table_header(spec)) o << "<th>" << escape(h) << "</th>";
  o << "</tr>";
  for (const Row& row : table_rows(spec, summary)) {
    o << "<tr>";
    for (const std::string& c : row.cells) o << "<td>" << escape(c) << "</td>";
    o << "</tr>";
  }
  o << "</table><div class=\"charts\">"
    << html::bar_chart("final", "final eval " + metric_header(spec.metric) + " (± std)", final_bars)
    << html::bar_chart("throughput", "training images/s (± std)", rate_bars) << "</div>";
  o << "<h2>Variants</h2><ul>";
  for (const Variant& v : spec.variants)
    o << "<li><b>" << escape(v.name) << "</b>: <code>" << escape(overrides_text(v)) << "</code>"
      << (v.note.empty() ? "" : " — " + escape(v.note)) << "</li>";
  o << "</ul><h2>Runs</h2><table class=\"scores\" id=\"runs\"><tr><th>variant</th><th>seed</th><th>state</th><th>final</th>"
       "<th>best</th><th>images/s</th><th>wall (min)</th><th>folder</th></tr>";
  for (const RunResult& r : runs) {
    o << "<tr><td>" << escape(r.variant) << "</td><td>" << r.seed << "</td><td>" << escape(r.state)
      << (r.error.empty() ? "" : ": " + escape(r.error.substr(0, 200))) << "</td><td>" << metric_value(spec.metric, r.final_metric)
      << "</td><td>" << metric_value(spec.metric, r.best_metric) << "</td><td>" << fixed(r.images_per_s, 0) << "</td><td>"
      << fixed(r.wall_s / 60, 1) << "</td><td>" << escape(r.folder) << "</td></tr>";
  }
  o << "</table></body></html>\n";
  return o.str();
}

}  // namespace flowrun::ablation
