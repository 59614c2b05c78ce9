#include "stages/monitor/report_html.hpp"

#include "stages/monitor/html_charts.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace flowrun {
namespace {

using html::escape;
using html::line_chart;
using html::num;
using html::Series;

Series series_of(const std::vector<Metrics>& history, const std::string& scope, const std::string& value,
                 const std::string& name, const std::string& color, double scale = 1.0) {
  Series s{name, color, {}, scope != "train", {}};
  for (const Metrics& m : history) {
    if (m.scope != scope) continue;
    const auto it = m.values.find(value);
    if (it != m.values.end()) s.points.emplace_back(static_cast<double>(m.step), it->second * scale);
  }
  return s;
}

std::string confusion_heatmap(const Evaluation& e, const std::string& id = "confusion") {
  const auto& cm = e.metrics->confusion();
  const std::size_t n = cm.size();
  const bool numbers = n <= 20;
  const int cell = numbers ? 34 : std::max(3, 600 / static_cast<int>(std::max<std::size_t>(n, 1)));
  std::ostringstream o;
  o << "<table id=\"" << id << "\" class=\"heatmap\"><tr><th class=\"corner\">true \\ predicted</th>";
  for (std::size_t j = 0; j < n; ++j)
    o << "<th class=\"col\" title=\"" << escape(j < e.classes.size() ? e.classes[j] : std::to_string(j)) << "\">"
      << (numbers ? escape(j < e.classes.size() ? e.classes[j] : std::to_string(j)) : "") << "</th>";
  o << "</tr>";
  for (std::size_t i = 0; i < n; ++i) {
    std::int64_t row = 0;
    for (std::int64_t v : cm[i]) row += v;
    const std::string name = i < e.classes.size() ? e.classes[i] : std::to_string(i);
    o << "<tr><th class=\"row\">" << (numbers ? escape(name) : "") << "</th>";
    for (std::size_t j = 0; j < n; ++j) {
      const double share = row ? static_cast<double>(cm[i][j]) / static_cast<double>(row) : 0.0;
      // Diagonal in blue, mistakes in red, intensity by the share of the true class's samples.
      const int hue = i == j ? 215 : 5;
      const int light = static_cast<int>(100 - 55 * std::sqrt(share));
      o << "<td style=\"background:hsl(" << hue << ",70%," << light << "%);width:" << cell << "px;height:" << cell
        << "px\" title=\"" << escape(name) << " → " << escape(j < e.classes.size() ? e.classes[j] : std::to_string(j))
        << ": " << cm[i][j] << "\">" << (numbers ? std::to_string(cm[i][j]) : "") << "</td>";
    }
    o << "</tr>";
  }
  o << "</table>";
  return o.str();
}

std::string per_class_table(const Evaluation& e, const std::string& id = "per-class") {
  const auto scores = e.metrics->per_class();
  std::ostringstream o;
  o << "<table id=\"" << id << "\" class=\"scores\"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
       "<th>support</th></tr>";
  for (std::size_t c = 0; c < scores.size(); ++c) {
    o << "<tr><td>" << escape(c < e.classes.size() ? e.classes[c] : std::to_string(c)) << "</td><td>"
      << num(scores[c].precision) << "</td><td>" << num(scores[c].recall) << "</td><td>" << num(scores[c].f1)
      << "</td><td>" << scores[c].support << "</td></tr>";
  }
  o << "</table>";
  return o.str();
}

std::string sample_grid(const Evaluation& e, const std::vector<Misclassified>& samples, const std::string& id) {
  std::ostringstream o;
  o << "<div id=\"" << id << "\" class=\"thumbs\">";
  auto name = [&](std::int64_t c) { return c >= 0 && static_cast<std::size_t>(c) < e.classes.size() ? e.classes[c] : std::to_string(c); };
  for (const Misclassified& m : samples) {
    const std::string bmp = bmp_of(m.thumbnail);
    o << "<figure title=\"" << escape(m.key) << "\"><img width=\"96\" height=\"96\" alt=\"" << escape(m.key)
      << "\" src=\"data:image/bmp;base64," << base64(reinterpret_cast<const std::uint8_t*>(bmp.data()), bmp.size())
      << "\"/><figcaption><b>" << escape(name(m.predicted)) << "</b> " << num(100 * m.confidence, 3) << "%<br/>true "
      << escape(name(m.label)) << "<br/><span class=\"key\">" << escape(m.key) << "</span></figcaption></figure>";
  }
  if (samples.empty()) o << "<p>none</p>";
  o << "</div>";
  return o.str();
}

// Nodes in columns by their longest distance from a source; edges as curves.
std::string pipeline_svg(const PipelineSketch& p) {
  const std::size_t n = p.nodes.size();
  std::vector<int> level(n, 0);
  for (std::size_t round = 0; round < n; ++round)
    for (const auto& [a, b] : p.edges) level[static_cast<std::size_t>(b)] = std::max(level[static_cast<std::size_t>(b)], level[static_cast<std::size_t>(a)] + 1);
  std::map<int, int> rows;
  std::vector<int> row(n);
  for (std::size_t i = 0; i < n; ++i) row[i] = rows[level[i]]++;
  int columns = 0, max_rows = 0;
  for (const auto& [l, count] : rows) {
    columns = std::max(columns, l + 1);
    max_rows = std::max(max_rows, count);
  }
  constexpr double CW = 150, RH = 56, BW = 126, BH = 38;
  const double W = columns * CW + 20, H = max_rows * RH + 20;
  auto cx = [&](std::size_t i) { return 10 + level[i] * CW; };
  auto cy = [&](std::size_t i) { return 10 + row[i] * RH; };
  std::ostringstream o;
  o << "<svg id=\"pipeline-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\">";
  for (const auto& [a, b] : p.edges) {
    const auto ia = static_cast<std::size_t>(a), ib = static_cast<std::size_t>(b);
    const double x0 = cx(ia) + BW, y0 = cy(ia) + BH / 2, x1 = cx(ib), y1 = cy(ib) + BH / 2;
    o << "<path d=\"M" << x0 << "," << y0 << " C" << (x0 + x1) / 2 << "," << y0 << " " << (x0 + x1) / 2 << "," << y1 << " "
      << x1 << "," << y1 << "\" class=\"edge\"/>";
  }
  for (std::size_t i = 0; i < n; ++i) {
    o << "<g class=\"node\"><rect x=\"" << cx(i) << "\" y=\"" << cy(i) << "\" width=\"" << BW << "\" height=\"" << BH
      << "\" rx=\"6\"/><text x=\"" << cx(i) + BW / 2 << "\" y=\"" << cy(i) + 16 << "\" text-anchor=\"middle\" class=\"id\">"
      << escape(p.nodes[i]) << "</text><text x=\"" << cx(i) + BW / 2 << "\" y=\"" << cy(i) + 31
      << "\" text-anchor=\"middle\" class=\"plugin\">" << escape(p.plugins[i]) << "</text></g>";
  }
  o << "</svg>";
  return o.str();
}



}  // namespace

std::string base64(const std::uint8_t* data, std::size_t size) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (std::size_t i = 0; i < size; i += 3) {
    const std::uint32_t b = (static_cast<std::uint32_t>(data[i]) << 16) |
                            (i + 1 < size ? static_cast<std::uint32_t>(data[i + 1]) << 8 : 0) |
                            (i + 2 < size ? static_cast<std::uint32_t>(data[i + 2]) : 0);
    out += kAlphabet[(b >> 18) & 63];
    out += kAlphabet[(b >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(b >> 6) & 63] : '=';
    out += i + 2 < size ? kAlphabet[b & 63] : '=';
  }
  return out;
}

std::string bmp_of(const Thumbnail& t) {
  const std::uint32_t row = (static_cast<std::uint32_t>(t.width) * 3 + 3) & ~3u;
  const std::uint32_t pixels = row * static_cast<std::uint32_t>(t.height);
  std::string out(54 + pixels, '\0');
  auto put32 = [&](std::size_t at, std::uint32_t v) {
    for (int k = 0; k < 4; ++k) out[at + k] = static_cast<char>((v >> (8 * k)) & 0xff);
  };
  out[0] = 'B';
  out[1] = 'M';
  put32(2, 54 + pixels);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<std::uint32_t>(t.width));
  put32(22, static_cast<std::uint32_t>(t.height));
  out[26] = 1;   // planes
  out[28] = 24;  // bits per pixel
  put32(34, pixels);
  for (int y = 0; y < t.height; ++y) {  // rows bottom-up, pixels BGR
    char* dst = out.data() + 54 + static_cast<std::size_t>(t.height - 1 - y) * row;
    const std::uint8_t* src = t.rgb.data() + static_cast<std::size_t>(y) * t.width * 3;
    for (int x = 0; x < t.width; ++x) {
      dst[x * 3 + 0] = static_cast<char>(src[x * 3 + 2]);
      dst[x * 3 + 1] = static_cast<char>(src[x * 3 + 1]);
      dst[x * 3 + 2] = static_cast<char>(src[x * 3 + 0]);
    }
  }
  return out;
}

PipelineSketch sketch_pipeline(const std::string& pipeline_json) {
  PipelineSketch p;
  nlohmann::json d;
  try {
    d = nlohmann::json::parse(pipeline_json);
  } catch (const nlohmann::json::exception&) {
    return p;
  }
  std::map<std::string, int> index;
  for (const auto& node : d.value("nodes", nlohmann::json::array())) {
    index[node.value("id", "")] = static_cast<int>(p.nodes.size());
    p.nodes.push_back(node.value("id", ""));
    p.plugins.push_back(node.value("plugin", ""));
  }
  auto id_of = [&](std::string end) {
    end.erase(0, end.find_first_not_of(" \t"));
    end.erase(end.find_last_not_of(" \t") + 1);
    const auto it = index.find(end.substr(0, end.find('.')));
    return it == index.end() ? -1 : it->second;
  };
  auto add = [&](int a, int b) {
    if (a >= 0 && b >= 0) p.edges.emplace_back(a, b);
  };
  for (const auto& e : d.value("edges", nlohmann::json::array())) {
    if (e.is_string()) {
      const std::string text = e.get<std::string>();
      std::vector<int> hops;
      std::size_t start = 0;
      for (;;) {
        const std::size_t arrow = text.find("->", start);
        hops.push_back(id_of(text.substr(start, arrow == std::string::npos ? std::string::npos : arrow - start)));
        if (arrow == std::string::npos) break;
        start = arrow + 2;
      }
      for (std::size_t h = 0; h + 1 < hops.size(); ++h) add(hops[h], hops[h + 1]);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      add(id_of(e[0].get<std::string>()), id_of(e[1].get<std::string>()));
    }
  }
  return p;
}

std::string render_report_html(const ReportData& r) {
  const auto& h = r.history;
  std::ostringstream o;
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>flowrun report: " << escape(r.name)
    << "</title><style>" << html::kPageStyle << "</style></head><body>";
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  o << "<h1>" << escape(r.name) << "</h1><div class=\"sub\">flowrun run report · " << escape(r.state) << " · written "
    << when << "</div>";
  // Headline numbers.
  o << "<div class=\"cards\" id=\"summary\">";
  auto card = [&](const std::string& k, const std::string& v) {
    o << "<div class=\"card\"><div class=\"v\">" << escape(v) << "</div><div class=\"k\">" << escape(k) << "</div></div>";
  };
  std::uint64_t last_step = 0;
  for (const Metrics& m : h) last_step = std::max(last_step, m.step);
  card("optimizer steps", std::to_string(last_step));
  if (r.test && r.test->metrics) {
    card("test accuracy", num(100 * r.test->metrics->accuracy(), 4) + "%");
    card("test macro F1", num(r.test->metrics->macro_f1(), 3));
  }
  if (r.evaluation && r.evaluation->metrics) {
    const auto& m = *r.evaluation->metrics;
    card("accuracy", num(100 * m.accuracy(), 4) + "%");
    card("top-" + std::to_string(m.top_k()) + " accuracy", num(100 * m.top_k_accuracy(), 4) + "%");
    card("macro F1", num(m.macro_f1(), 3));
    card("eval loss", num(m.loss(), 4));
    if (r.evaluation->ema_metrics) card("EMA accuracy", num(100 * r.evaluation->ema_metrics->accuracy(), 4) + "%");
    card("evaluated after epoch", std::to_string(r.evaluation->epoch));
  }
  o << "</div>";
  if (!r.notes.empty()) {
    o << "<h2>Notes</h2><ul class=\"notes\" id=\"notes\">";
    for (const auto& n : r.notes) o << "<li>" << escape(n) << "</li>";
    o << "</ul>";
  }
  o << "<h2>Training curves</h2><div class=\"charts\">";
  o << line_chart("chart-loss", "Loss",
                  {series_of(h, "train", "loss", "train", "#3b6fd8"), series_of(h, "train_epoch", "loss", "train (epoch)", "#7a4fd1"),
                   series_of(h, "eval", "loss", "val", "#d9480f")});
  o << line_chart("chart-accuracy", "Accuracy (%)",
                  {series_of(h, "train", "accuracy", "train", "#3b6fd8", 100),
                   series_of(h, "eval", "accuracy", "val", "#d9480f", 100),
                   series_of(h, "eval", "top5_accuracy", "val top-5", "#e8a33d", 100),
                   series_of(h, "eval", "ema_accuracy", "val EMA", "#2b8a3e", 100)});
  o << line_chart("chart-lr", "Learning rate", {series_of(h, "train", "lr", "lr", "#3b6fd8")});
  o << line_chart("chart-throughput", "Throughput (images/s)", {series_of(h, "train", "images_per_s", "train", "#3b6fd8")});
  o << line_chart("chart-grad-norm", "Gradient norm (before clipping)", {series_of(h, "train", "grad_norm", "grad norm", "#3b6fd8")});
  o << "</div>";
  if (r.evaluation && r.evaluation->metrics) {
    o << "<h2>Confusion matrix (evaluation after epoch " << r.evaluation->epoch << ")</h2>"
      << "<p class=\"sub\">Rows: true class; columns: predicted. Colour: share of the row's samples (blue: correct, red: "
         "mistakes).</p>"
      << confusion_heatmap(*r.evaluation);
    o << "<h2>Per class</h2>" << per_class_table(*r.evaluation);
    o << "<h2>Most confidently wrong</h2><p class=\"sub\">Misclassified evaluation samples with the highest loss: "
         "prediction and its probability, the true class, the file.</p>"
      << sample_grid(*r.evaluation, r.evaluation->worst, "misclassified");
  } else {
    o << "<h2>Evaluation</h2><p>No evaluation yet (connect an eval input to the train stage and its evaluations output "
         "to this report).</p>";
  }
  if (r.test && r.test->metrics) {
    o << "<h2>Test split (once, after training)</h2>" << confusion_heatmap(*r.test, "test-confusion")
      << per_class_table(*r.test, "test-per-class") << "<h3>Most confidently wrong on the test split</h3>"
      << sample_grid(*r.test, r.test->worst, "test-misclassified");
  }
  if (r.evaluation && !r.evaluation->suspected_label_errors.empty()) {
    o << "<h2>Suspected label errors</h2><p class=\"sub\">Training samples the model assigned to another class in "
         "most epochs, with high mean confidence: that class and the probability, the label given, the file (the "
         "picture as the last epoch augmented it). Worth a look: some are mislabelled, some are just hard, and a model "
         "that is still weak mostly shows its own confusions.</p>"
      << sample_grid(*r.evaluation, r.evaluation->suspected_label_errors, "label-errors");
  }
  o << "<h2>Pipeline</h2>" << pipeline_svg(sketch_pipeline(r.pipeline_json));
  std::string pretty = r.pipeline_json;
  try {
    pretty = nlohmann::json::parse(r.pipeline_json).dump(2);
  } catch (const nlohmann::json::exception&) {
  }
  o << "<details><summary>Resolved description</summary><pre id=\"description\">" << escape(pretty) << "</pre></details>";
  o << "</body></html>\n";
  return o.str();
}

}  // namespace flowrun
