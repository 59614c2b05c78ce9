// SVG line and bar charts and the page style shared by the HTML files flowrun writes
// (the run report, the ablation report): self-contained, no scripts, no network.
// Torch-free.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace flowrun::html {

std::string escape(const std::string& s);
std::string num(double v, int digits = 4);  // %g with `digits` significant digits

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (x, y)
  bool dots = false;                               // few points: draw markers
  std::vector<std::pair<double, double>> band;     // optional (lo, hi) per point: a shaded band
};

// Round tick values (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target = 5);

// log_x: a logarithmic x axis (every x > 0) ticked at the data's x values.
std::string line_chart(const std::string& id, const std::string& title, const std::vector<Series>& series,
                       const std::string& x_label = "optimizer step", bool log_x = false);

// One bar per entry with a whisker of +- error (an error of 0 draws none).
struct Bar {
  std::string label, color;
  double value = 0, error = 0;
};
std::string bar_chart(const std::string& id, const std::string& title, const std::vector<Bar>& bars);

// Confidence intervals against a zero line (a forest plot), one row each; rows whose
// interval includes 0 are drawn grey.
struct IntervalRow {
  std::string label, color;
  double mean = 0, lo = 0, hi = 0;  // lo, hi NaN: the mean alone
};
std::string interval_chart(const std::string& id, const std::string& title, const std::vector<IntervalRow>& rows,
                           const std::string& x_label);

// A colour per series index, the same in every chart.
const char* palette(std::size_t i);

// The CSS every page shares (cards, charts, tables).
extern const char* const kPageStyle;

}  // namespace flowrun::html
