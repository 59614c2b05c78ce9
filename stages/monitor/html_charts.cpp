#include "stages/monitor/html_charts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace flowrun::html {

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*g", digits, v);
  return text;
}



// Round tick steps (1, 2, 5 x 10^k) covering [lo, hi].
std::vector<double> ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

std::string line_chart(const std::string& id, const std::string& title, const std::vector<Series>& series,
                       const std::string& x_label, bool log_x) {
  constexpr double W = 460, L = 56, R = 12, B = 36;
  // The legend sits beside the title, right-aligned, or below it in as many lines as it
  // needs (many series: a grid's cells) when both do not fit on one.
  auto item_width = [](const Series& s) { return 6.2 * static_cast<double>(s.name.size()) + 14; };
  double legend_width = 0;
  for (const Series& s : series)
    if (!s.points.empty()) legend_width += item_width(s);
  const bool legend_below = L + 7.5 * static_cast<double>(title.size()) + legend_width > W - R;
  std::vector<std::pair<double, double>> legend_at(series.size());  // (x, y) of each item, left-aligned
  int legend_lines = 0;
  if (legend_below) {
    double x = W;  // forces a first line
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (series[i].points.empty()) continue;
      if (x + item_width(series[i]) > W - R) x = 8, ++legend_lines;
      legend_at[i] = {x, 22.0 + 13.0 * legend_lines};
      x += item_width(series[i]);
    }
  }
  const double T = 28 + 13.0 * legend_lines, H = 240 + 13.0 * legend_lines;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  std::vector<double> xs;  // the log axis's ticks
  // On a log axis x is drawn as log10(x); points at x <= 0 cannot be.
  auto fx = [log_x](double x) { return log_x ? std::log10(x) : x; };
  for (const Series& s : series)
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto [x, y] = s.points[i];
      if (!std::isfinite(y) || (log_x && !(x > 0))) continue;
      x0 = std::min(x0, fx(x));
      x1 = std::max(x1, fx(x));
      if (std::find(xs.begin(), xs.end(), x) == xs.end()) xs.push_back(x);
      double lo = y, hi = y;
      if (i < s.band.size() && std::isfinite(s.band[i].first) && std::isfinite(s.band[i].second))
        lo = std::min(lo, s.band[i].first), hi = std::max(hi, s.band[i].second);
      y0 = std::min(y0, lo);
      y1 = std::max(y1, hi);
    }
  std::ostringstream o;
  o << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">";
  o << "<text x=\"" << L << "\" y=\"18\" class=\"title\">" << escape(title) << "</text>";
  if (!std::isfinite(x0)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\" class=\"empty\">no data yet</text></svg>";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  auto sx = [&](double x) { return L + (fx(x) - x0) / (x1 - x0) * (W - L - R); };
  auto sy = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  auto drawn = [&](double x, double y) { return std::isfinite(y) && (!log_x || x > 0); };
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B << "\" class=\"plot\"/>";
  for (double t : ticks(y0, y1)) {
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << sy(t) << "\" y2=\"" << sy(t) << "\" class=\"grid\"/>";
    o << "<text x=\"" << L - 4 << "\" y=\"" << sy(t) + 4 << "\" text-anchor=\"end\" class=\"tick\">" << num(t, 3) << "</text>";
  }
  for (double t : log_x ? xs : ticks(x0, x1)) {
    o << "<text x=\"" << sx(t) << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\" class=\"tick\">" << num(t, 6) << "</text>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 4 << "\" text-anchor=\"middle\" class=\"axis\">" << escape(x_label) << "</text>";
  double legend_x = W - R - 4;
  for (std::size_t k = series.size(); k-- > 0;) {
    const Series& s = series[k];
    if (s.points.empty()) continue;
    if (legend_below) {
      o << "<text x=\"" << legend_at[k].first << "\" y=\"" << legend_at[k].second << "\" fill=\"" << s.color
        << "\" class=\"legend\">" << escape(s.name) << "</text>";
    } else {
      o << "<text x=\"" << legend_x << "\" y=\"18\" text-anchor=\"end\" fill=\"" << s.color << "\" class=\"legend\">"
        << escape(s.name) << "</text>";
      legend_x -= item_width(s);
    }
  }
  for (const Series& s : series) {
    // The band: along the lower edge, back along the upper one (points with no band left out).
    std::vector<std::pair<double, double>> lower, upper;
    for (std::size_t i = 0; i < s.points.size() && i < s.band.size(); ++i) {
      const auto [lo, hi] = s.band[i];
      if (!drawn(s.points[i].first, s.points[i].second) || !std::isfinite(lo) || !std::isfinite(hi)) continue;
      lower.emplace_back(sx(s.points[i].first), sy(lo));
      upper.emplace_back(sx(s.points[i].first), sy(hi));
    }
    if (lower.size() < 2) continue;
    o << "<polygon class=\"band\" fill=\"" << s.color << "\" points=\"";
    for (const auto& [x, y] : lower) o << num(x, 6) << "," << num(y, 6) << " ";
    for (auto it = upper.rbegin(); it != upper.rend(); ++it) o << num(it->first, 6) << "," << num(it->second, 6) << " ";
    o << "\"/>";
  }
  for (const Series& s : series) {
    if (s.points.empty()) continue;
    o << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.6\" points=\"";
    for (const auto& [x, y] : s.points)
      if (drawn(x, y)) o << num(sx(x), 6) << "," << num(sy(y), 6) << " ";
    o << "\"/>";
    if (s.dots || s.points.size() < 30) {
      for (const auto& [x, y] : s.points)
        if (drawn(x, y))
          o << "<circle cx=\"" << num(sx(x), 6) << "\" cy=\"" << num(sy(y), 6) << "\" r=\"2.6\" fill=\"" << s.color << "\"/>";
    }
  }
  o << "</svg>";
  return o.str();
}

std::string bar_chart(const std::string& id, const std::string& title, const std::vector<Bar>& bars) {
  constexpr double L = 56, R = 12, T = 28, B = 64, Slot = 54;
  const double W = std::max(260.0, L + R + Slot * static_cast<double>(bars.size())), H = 260;
  double y0 = 0, y1 = 0;
  for (const Bar& b : bars) {
    if (!std::isfinite(b.value)) continue;
    y0 = std::min(y0, b.value - b.error);
    y1 = std::max(y1, b.value + b.error);
  }
  if (y1 == y0) y1 = y0 + 1;
  y1 += (y1 - y0) * 0.05;
  auto sy = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">";
  o << "<text x=\"" << L << "\" y=\"18\" class=\"title\">" << escape(title) << "</text>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B << "\" class=\"plot\"/>";
  for (double t : ticks(y0, y1)) {
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << sy(t) << "\" y2=\"" << sy(t) << "\" class=\"grid\"/>";
    o << "<text x=\"" << L - 4 << "\" y=\"" << sy(t) + 4 << "\" text-anchor=\"end\" class=\"tick\">" << num(t, 3) << "</text>";
  }
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    const double cx = L + Slot * (static_cast<double>(i) + 0.5);
    o << "<text x=\"" << cx << "\" y=\"" << H - B + 14 << "\" text-anchor=\"end\" class=\"tick\" transform=\"rotate(-30 " << cx
      << " " << H - B + 14 << ")\">" << escape(b.label) << "</text>";
    if (!std::isfinite(b.value)) continue;
    const double top = sy(std::max(b.value, 0.0)), bottom = sy(std::min(b.value, 0.0));
    o << "<rect x=\"" << cx - 16 << "\" y=\"" << num(top, 6) << "\" width=\"32\" height=\"" << num(bottom - top, 6)
      << "\" fill=\"" << b.color << "\"><title>" << escape(b.label) << ": " << num(b.value) << " +- " << num(b.error)
      << "</title></rect>";
    if (b.error > 0) {
      const double hi = sy(b.value + b.error), lo = sy(b.value - b.error);
      o << "<path class=\"whisker\" d=\"M" << cx << " " << num(hi, 6) << "V" << num(lo, 6) << "M" << cx - 7 << " "
        << num(hi, 6) << "H" << cx + 7 << "M" << cx - 7 << " " << num(lo, 6) << "H" << cx + 7 << "\"/>";
    }
    o << "<text x=\"" << cx << "\" y=\"" << num(top - 4, 6) << "\" text-anchor=\"middle\" class=\"tick\">" << num(b.value, 3)
      << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string interval_chart(const std::string& id, const std::string& title, const std::vector<IntervalRow>& rows,
                           const std::string& x_label) {
  constexpr double W = 520, L = 170, R = 16, T = 28, B = 36, Row = 20;
  const double H = T + B + Row * static_cast<double>(std::max<std::size_t>(rows.size(), 1));
  double x0 = 0, x1 = 0;  // zero is always on the axis
  for (const IntervalRow& r : rows)
    for (double v : {r.mean, r.lo, r.hi})
      if (std::isfinite(v)) x0 = std::min(x0, v), x1 = std::max(x1, v);
  if (x1 == x0) x1 = x0 + 1;
  const double pad = (x1 - x0) * 0.05;
  x0 -= pad;
  x1 += pad;
  auto sx = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  std::ostringstream o;
  o << "<svg id=\"" << id << "\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << " " << H << "\">";
  o << "<text x=\"" << 8 << "\" y=\"18\" class=\"title\">" << escape(title) << "</text>";
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B << "\" class=\"plot\"/>";
  for (double t : ticks(x0, x1)) {
    o << "<line x1=\"" << num(sx(t), 6) << "\" x2=\"" << num(sx(t), 6) << "\" y1=\"" << T << "\" y2=\"" << H - B
      << "\" class=\"grid\"/>";
    o << "<text x=\"" << num(sx(t), 6) << "\" y=\"" << H - B + 14 << "\" text-anchor=\"middle\" class=\"tick\">" << num(t, 3)
      << "</text>";
  }
  o << "<line class=\"zero\" x1=\"" << num(sx(0), 6) << "\" x2=\"" << num(sx(0), 6) << "\" y1=\"" << T << "\" y2=\"" << H - B
    << "\"/>";
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 4 << "\" text-anchor=\"middle\" class=\"axis\">" << escape(x_label)
    << "</text>";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const IntervalRow& r = rows[i];
    const double cy = T + Row * (static_cast<double>(i) + 0.5);
    const bool has_interval = std::isfinite(r.lo) && std::isfinite(r.hi);
    const bool resolved = has_interval && (r.lo > 0 || r.hi < 0);
    const std::string color = resolved ? r.color : std::string("#9aa3b5");
    o << "<text x=\"" << L - 6 << "\" y=\"" << cy + 4 << "\" text-anchor=\"end\" class=\"tick\">" << escape(r.label) << "</text>";
    if (!std::isfinite(r.mean)) continue;
    if (has_interval)
      o << "<line x1=\"" << num(sx(r.lo), 6) << "\" x2=\"" << num(sx(r.hi), 6) << "\" y1=\"" << cy << "\" y2=\"" << cy
        << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>";
    o << "<circle cx=\"" << num(sx(r.mean), 6) << "\" cy=\"" << cy << "\" r=\"3.5\" fill=\"" << color << "\"><title>"
      << escape(r.label) << ": " << num(r.mean) << (has_interval ? " [" + num(r.lo) + ", " + num(r.hi) + "]" : std::string())
      << "</title></circle>";
  }
  o << "</svg>";
  return o.str();
}

const char* palette(std::size_t i) {
  static const char* const colors[] = {"#2f6fdf", "#e0702b", "#2a9d5b", "#c4384b", "#7d5bc9",
                                       "#8a6d3b", "#d455a8", "#5b6475", "#b5a82a", "#1fa2b5"};
  return colors[i % (sizeof colors / sizeof colors[0])];
}

const char* const kPageStyle = R"(
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e3e6ee;padding-bottom:4px}
.sub{color:#5b6475} .cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #e3e6ee;border-radius:8px;padding:8px 14px;min-width:110px}
.card .v{font-size:20px;font-weight:600} .card .k{color:#5b6475;font-size:12px}
.notes li{margin:2px 0} .charts{display:flex;flex-wrap:wrap;gap:10px}
svg.chart .plot{fill:#fafbfd;stroke:#d5d9e3} svg.chart .grid{stroke:#e8ebf1} svg.chart .tick{font-size:10px;fill:#5b6475}
svg.chart .title{font-size:13px;font-weight:600} svg.chart .legend{font-size:11px} svg.chart .axis{font-size:10px;fill:#5b6475}
table.heatmap{border-collapse:collapse;font-size:11px} table.heatmap td{text-align:center;border:1px solid #fff;padding:0}
table.heatmap th.col{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:500;padding:2px}
table.heatmap th.row{text-align:right;font-weight:500;padding-right:6px} table.heatmap th.corner{font-size:10px;color:#5b6475}
table.scores{border-collapse:collapse} table.scores td,table.scores th{padding:3px 10px;border-bottom:1px solid #eef0f4;text-align:right}
table.scores td:first-child,table.scores th:first-child{text-align:left}
.thumbs{display:flex;flex-wrap:wrap;gap:10px} figure{margin:0;width:120px;font-size:11px}
figure img{image-rendering:pixelated;border-radius:4px;display:block} .key{color:#8a93a5;word-break:break-all}
svg .whisker{stroke:#1d2330;stroke-width:1.3;fill:none} svg .band{opacity:.15;stroke:none}
svg .zero{stroke:#1d2330;stroke-width:1}
svg .edge{fill:none;stroke:#9aa3b5;stroke-width:1.4} svg .node rect{fill:#eef3ff;stroke:#7d93c9}
svg .node .id{font-size:12px;font-weight:600} svg .node .plugin{font-size:10px;fill:#5b6475}
pre{background:#f6f7fa;padding:10px;border-radius:6px;overflow:auto;font-size:12px}
)";

}  // namespace flowrun::html
