#include "ablation.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace flowrun::ablation {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

[[noreturn]] void fail(const std::string& file, const std::string& where, const std::string& what) {
  throw std::runtime_error(file + (where.empty() ? "" : ": " + where) + ": " + what);
}

std::vector<std::string> string_list(const json& j, const std::string& file, const std::string& where) {
  if (!j.is_array()) fail(file, where, "expected a list of \"PATH=VALUE\" strings (--set syntax)");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!j[i].is_string()) fail(file, at, "expected a \"PATH=VALUE\" string (--set syntax)");
    const std::string s = j[i].get<std::string>();
    if (s.find('=') == std::string::npos || s.front() == '=') fail(file, at, "'" + s + "' is not PATH=VALUE");
    out.push_back(s);
  }
  return out;
}

void only_keys(const json& j, const std::set<std::string>& allowed, const std::string& file, const std::string& where) {
  for (const auto& [key, value] : j.items()) {
    if (allowed.count(key)) continue;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(file, where.empty() ? key : where + "." + key, "unknown key; expected one of " + list);
  }
}

const std::regex kNamePattern("[A-Za-z0-9_.+-]+");

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

}  // namespace

std::vector<std::string> Spec::run_overrides(const Variant& v, std::uint64_t seed) const {
  std::vector<std::string> all = overrides;
  all.insert(all.end(), v.overrides.begin(), v.overrides.end());
  all.push_back("seed=" + std::to_string(seed));
  return all;
}

std::string Spec::run_name(const Variant& v, std::uint64_t seed) { return v.name + "-s" + std::to_string(seed); }

Spec parse_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read ablation file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_spec_text(text.str(), path);
}

Spec parse_spec_text(const std::string& text, const std::string& path) {
  json j;
  try {
    j = json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    fail(path, "", std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object()) fail(path, "", "expected a JSON object with name, base, seeds and variants");
  only_keys(j, {"name", "base", "seeds", "set", "metric", "variants", "note"}, path, "");
  Spec s;
  s.file = path;
  for (const char* key : {"name", "base", "seeds", "variants"})
    if (!j.contains(key)) fail(path, key, "missing (an ablation file names its base pipeline, seeds and variants)");
  if (!j["name"].is_string() || !std::regex_match(j["name"].get<std::string>(), kNamePattern))
    fail(path, "name", "expected a name of letters, digits and _.+-");
  s.name = j["name"].get<std::string>();
  if (!j["base"].is_string()) fail(path, "base", "expected the path of the base pipeline (relative to this file)");
  const fs::path base = fs::path(path).parent_path() / j["base"].get<std::string>();
  s.base = base.lexically_normal().string();
  if (!fs::is_regular_file(s.base)) fail(path, "base", "no pipeline at " + s.base);
  if (!j["seeds"].is_array() || j["seeds"].empty()) fail(path, "seeds", "expected a non-empty list of seeds, e.g. [0, 1]");
  for (std::size_t i = 0; i < j["seeds"].size(); ++i) {
    const json& seed = j["seeds"][i];
    if (!seed.is_number_unsigned()) fail(path, "seeds[" + std::to_string(i) + "]", "expected a non-negative integer");
    const auto value = seed.get<std::uint64_t>();
    if (std::count(s.seeds.begin(), s.seeds.end(), value)) fail(path, "seeds[" + std::to_string(i) + "]", "seed listed twice");
    s.seeds.push_back(value);
  }
  if (j.contains("set")) s.overrides = string_list(j["set"], path, "set");
  if (j.contains("metric")) {
    if (!j["metric"].is_string() || j["metric"].get<std::string>().empty())
      fail(path, "metric", "expected an eval metric name (accuracy, loss, macro_f1, top5_accuracy, ...)");
    s.metric = j["metric"].get<std::string>();
  }
  const json& variants = j["variants"];
  if (!variants.is_array() || variants.empty()) fail(path, "variants", "expected a non-empty list of {\"name\", \"set\"}");
  for (std::size_t i = 0; i < variants.size(); ++i) {
    const std::string at = "variants[" + std::to_string(i) + "]";
    const json& v = variants[i];
    if (!v.is_object()) fail(path, at, "expected {\"name\": ..., \"set\": [...]}");
    only_keys(v, {"name", "set", "note"}, path, at);
    if (!v.contains("name") || !v["name"].is_string() || !std::regex_match(v["name"].get<std::string>(), kNamePattern))
      fail(path, at + ".name", "expected a name of letters, digits and _.+- (it names the run folders)");
    Variant variant;
    variant.name = v["name"].get<std::string>();
    for (const Variant& other : s.variants)
      if (other.name == variant.name) fail(path, at + ".name", "'" + variant.name + "' is used twice");
    if (v.contains("set")) variant.overrides = string_list(v["set"], path, at + ".set");
    if (v.contains("note") && v["note"].is_string()) variant.note = v["note"].get<std::string>();
    s.variants.push_back(std::move(variant));
  }
  return s;
}

RunResult::RunResult()
    : final_metric(kNaN), best_metric(kNaN), images_per_s(kNaN), data_stall(kNaN), wall_s(kNaN) {}

Stat::Stat() : mean(kNaN), std(kNaN) {}

bool lower_is_better(const std::string& metric) { return metric.find("loss") != std::string::npos; }

RunResult read_run(const std::string& folder, const std::string& variant, std::uint64_t seed, const std::string& metric) {
  RunResult r;
  r.variant = variant;
  r.seed = seed;
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
    } else if (scope == "eval" && m.contains(metric) && m[metric].is_number()) {
      r.curve.emplace_back(m.value("step", 0.0), m[metric].get<double>());
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

Stat stat_of(const std::vector<double>& values) {
  Stat s;
  double sum = 0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++s.n;
  if (s.n == 0) return s;
  s.mean = sum / static_cast<double>(s.n);
  double squares = 0;
  for (double v : values)
    if (std::isfinite(v)) squares += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(squares / static_cast<double>(s.n - 1)) : 0.0;
  return s;
}

std::vector<VariantSummary> summarize(const Spec& spec, const std::vector<RunResult>& runs) {
  std::vector<VariantSummary> out;
  for (const Variant& v : spec.variants) {
    VariantSummary s;
    s.variant = &v;
    std::vector<double> finals, bests, rates, stalls, walls;
    std::vector<const RunResult*> done;
    for (const RunResult& r : runs) {
      if (r.variant != v.name) continue;
      ++s.runs;
      if (r.state == "failed") ++s.failed;
      if (r.state != "finished") continue;
      ++s.finished;
      done.push_back(&r);
      finals.push_back(r.final_metric);
      bests.push_back(r.best_metric);
      rates.push_back(r.images_per_s);
      stalls.push_back(r.data_stall);
      walls.push_back(r.wall_s);
    }
    s.final_metric = stat_of(finals);
    s.best_metric = stat_of(bests);
    s.images_per_s = stat_of(rates);
    s.data_stall = stat_of(stalls);
    s.wall_s = stat_of(walls);
    // The mean curve over the steps every finished seed evaluated at (seeds of one
    // variant share the schedule, so these are all of them unless early stopping differed).
    if (!done.empty()) {
      for (const auto& [step, value] : done.front()->curve) {
        std::vector<double> at_step;
        for (const RunResult* r : done)
          for (const auto& [s2, v2] : r->curve)
            if (s2 == step) at_step.push_back(v2);
        if (at_step.size() == done.size()) s.mean_curve.emplace_back(step, stat_of(at_step).mean);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace flowrun::ablation
