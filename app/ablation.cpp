// The ablation file: parsing and checking it, the product of its axes, and the
// ${prepare.NAME} references of its overrides.
#include "ablation.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "flowrun/errors.hpp"
#include "flowrun/json_keys.hpp"

namespace flowrun::ablation {
namespace fs = std::filesystem;
// Ordered: the axes apply, and nest, in the order the file lists them.
using json = nlohmann::ordered_json;

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& where, const std::string& what) {
  throw std::runtime_error(file + (where.empty() ? "" : ": " + where) + ": " + what);
}

// "/axes/lr/0" as the file's other messages name places: "axes.lr[0]".
std::string dotted(const std::string& pointer) {
  std::vector<std::string> tokens;  // unescaped, root first
  for (json::json_pointer p(pointer); !p.empty(); p = p.parent_pointer()) tokens.insert(tokens.begin(), p.back());
  std::string out;
  for (const std::string& token : tokens) {
    const bool index = !token.empty() && token.find_first_not_of("0123456789") == std::string::npos;
    out += index ? "[" + token + "]" : (out.empty() ? "" : ".") + token;
  }
  return out;
}

const std::regex kNamePattern("[A-Za-z0-9_.+-]+");
const std::string kPrepareOpen = "${prepare.";

// The NAMEs of every ${prepare.NAME} in `text`; throws on an unclosed one.
std::vector<std::string> prepared_references(const std::string& text) {
  std::vector<std::string> names;
  for (std::size_t at = text.find(kPrepareOpen); at != std::string::npos; at = text.find(kPrepareOpen, at + 1)) {
    const std::size_t close = text.find('}', at);
    if (close == std::string::npos) throw std::runtime_error("'" + text + "': ${prepare. without a closing }");
    names.push_back(text.substr(at + kPrepareOpen.size(), close - at - kPrepareOpen.size()));
  }
  return names;
}

// A list of "PATH=VALUE" whose ${prepare.NAME} references name one of `prepared`.
std::vector<std::string> string_list(const json& j, const std::string& file, const std::string& where,
                                     const std::set<std::string>& prepared) {
  if (!j.is_array()) fail(file, where, "expected a list of \"PATH=VALUE\" strings (--set syntax)");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!j[i].is_string()) fail(file, at, "expected a \"PATH=VALUE\" string (--set syntax)");
    const std::string s = j[i].get<std::string>();
    if (s.find('=') == std::string::npos || s.front() == '=') fail(file, at, "'" + s + "' is not PATH=VALUE");
    std::vector<std::string> refs;
    try {
      refs = prepared_references(s);
    } catch (const std::runtime_error& e) {
      fail(file, at, e.what());
    }
    for (const std::string& ref : refs)
      if (!prepared.count(ref))
        fail(file, at, "${prepare." + ref + "} names no prepared run" +
                           (prepared.empty() ? std::string(" (the file has no \"prepare\" list, or it comes later)")
                                             : " before this entry"));
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

std::string required_name(const json& j, const std::string& file, const std::string& at, const std::string& what) {
  if (!j.contains("name") || !j["name"].is_string() || !std::regex_match(j["name"].get<std::string>(), kNamePattern) ||
      j["name"].get<std::string>() == "." || j["name"].get<std::string>() == "..")
    fail(file, at + ".name", "expected a name of letters, digits and _.+- (" + what + ")");
  return j["name"].get<std::string>();
}

std::vector<Entry> parse_entries(const json& list, const std::string& file, const std::string& where,
                                 const std::set<std::string>& prepared) {
  if (!list.is_array() || list.empty()) fail(file, where, "expected a non-empty list of {\"name\", \"set\"}");
  std::vector<Entry> entries;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& v = list[i];
    if (!v.is_object()) fail(file, at, "expected {\"name\": ..., \"set\": [...]}");
    only_keys(v, {"name", "set", "note"}, file, at);
    Entry entry;
    entry.name = required_name(v, file, at, "it names the run folders");
    for (const Entry& other : entries)
      if (other.name == entry.name) fail(file, at + ".name", "'" + entry.name + "' is used twice");
    if (v.contains("set")) entry.overrides = string_list(v["set"], file, at + ".set", prepared);
    if (v.contains("note") && v["note"].is_string()) entry.note = v["note"].get<std::string>();
    entries.push_back(std::move(entry));
  }
  return entries;
}

std::string pipeline_path(const json& value, const std::string& file, const std::string& where) {
  if (!value.is_string()) fail(file, where, "expected the path of a pipeline (relative to this file)");
  const std::string path = (fs::path(file).parent_path() / value.get<std::string>()).lexically_normal().string();
  if (!fs::is_regular_file(path)) fail(file, where, "no pipeline at " + path);
  return path;
}

// The product of the axes, the last axis fastest; names must not collide ("a-b" x "c"
// and "a" x "b-c" would share a folder).
void build_cells(Spec& s) {
  std::vector<std::size_t> at(s.axes.size(), 0);
  std::set<std::string> names;
  for (;;) {
    Cell cell{at, ""};
    for (std::size_t a = 0; a < s.axes.size(); ++a) cell.name += (a ? "-" : "") + s.axes[a].entries[at[a]].name;
    if (!names.insert(cell.name).second)
      fail(s.file, "axes", "two combinations are both named '" + cell.name + "' (entry names with '-' collide)");
    s.cells.push_back(std::move(cell));
    std::size_t a = s.axes.size();
    while (a > 0 && ++at[a - 1] == s.axes[a - 1].entries.size()) at[--a] = 0;
    if (a == 0) break;
  }
}

}  // namespace

std::vector<std::string> Spec::run_overrides(const Cell& cell, std::uint64_t seed) const {
  std::vector<std::string> all = overrides;
  for (std::size_t a = 0; a < axes.size(); ++a) {
    const Entry& e = entry(cell, a);
    all.insert(all.end(), e.overrides.begin(), e.overrides.end());
  }
  all.push_back("seed=" + std::to_string(seed));
  return all;
}

std::string Spec::run_name(const Cell& cell, std::uint64_t seed) { return cell.name + "-s" + std::to_string(seed); }

std::size_t Spec::cell_index(const std::vector<std::size_t>& entries) const {
  // The product's order: a mixed-radix number, the last axis the lowest digit.
  std::size_t index = 0;
  for (std::size_t a = 0; a < axes.size(); ++a) index = index * axes[a].entries.size() + entries[a];
  return index;
}

std::size_t Spec::axis_index(const std::string& axis_name) const {
  for (std::size_t a = 0; a < axes.size(); ++a)
    if (axes[a].name == axis_name) return a;
  return kNoAxis;
}

void Spec::set_pivot(const std::string& rows_axis, const std::string& cols_axis) {
  std::string names;
  for (const Axis& a : axes) names += (names.empty() ? "" : ", ") + a.name;
  auto find = [&](const std::string& n, const char* what) {
    const std::size_t a = axis_index(n);
    if (a == kNoAxis) throw std::runtime_error(std::string(what) + ": no axis '" + n + "' (the axes: " + names + ")");
    return a;
  };
  if (!rows_axis.empty()) rows = find(rows_axis, "rows");
  if (!cols_axis.empty()) cols = find(cols_axis, "cols");
  if (axes.size() == 1) {
    cols = kNoAxis;
    return;
  }
  if (cols == kNoAxis || cols == rows) {
    if (!cols_axis.empty() && !rows_axis.empty()) throw std::runtime_error("cols: '" + cols_axis + "' is also the rows axis");
    if (!cols_axis.empty()) rows = cols == 0 ? 1 : 0;  // the columns asked for: the rows move aside
    else cols = rows == 0 ? 1 : 0;                     // the first axis that is not the rows
  }
}

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
    j = json::parse(text, DuplicateKeyCheck::callback<json>(path), true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    fail(path, "", std::string("not valid JSON: ") + e.what());
  } catch (const DescriptionError& e) {
    fail(path, dotted(e.problems().front().pointer), e.problems().front().message);
  }
  if (!j.is_object()) fail(path, "", "expected a JSON object with name, base, seeds and variants or axes");
  only_keys(j, {"name", "base", "seeds", "set", "metric", "variants", "axes", "prepare", "baseline", "rows", "cols", "note"},
            path, "");
  Spec s;
  s.file = path;
  for (const char* key : {"name", "base", "seeds"})
    if (!j.contains(key)) fail(path, key, "missing (an ablation file names its base pipeline, seeds and variants or axes)");
  if (!j.contains("variants") && !j.contains("axes"))
    fail(path, "variants", "missing: give \"variants\" (a list) or \"axes\" (an object of lists)");
  if (!j["name"].is_string() || !std::regex_match(j["name"].get<std::string>(), kNamePattern))
    fail(path, "name", "expected a name of letters, digits and _.+-");
  s.name = j["name"].get<std::string>();
  s.base = pipeline_path(j["base"], path, "base");
  if (!j["seeds"].is_array() || j["seeds"].empty()) fail(path, "seeds", "expected a non-empty list of seeds, e.g. [0, 1]");
  for (std::size_t i = 0; i < j["seeds"].size(); ++i) {
    const json& seed = j["seeds"][i];
    if (!seed.is_number_unsigned()) fail(path, "seeds[" + std::to_string(i) + "]", "expected a non-negative integer");
    const auto value = seed.get<std::uint64_t>();
    if (std::count(s.seeds.begin(), s.seeds.end(), value)) fail(path, "seeds[" + std::to_string(i) + "]", "seed listed twice");
    s.seeds.push_back(value);
  }
  if (j.contains("metric")) {
    if (!j["metric"].is_string() || j["metric"].get<std::string>().empty())
      fail(path, "metric", "expected an eval metric name (accuracy, loss, macro_f1, top5_accuracy, ...)");
    s.metric = j["metric"].get<std::string>();
  }

  std::set<std::string> prepared;
  if (j.contains("prepare")) {
    const json& list = j["prepare"];
    if (!list.is_array()) fail(path, "prepare", "expected a list of {\"name\", \"pipeline\", \"set\"}");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string at = "prepare[" + std::to_string(i) + "]";
      const json& p = list[i];
      if (!p.is_object()) fail(path, at, "expected {\"name\": ..., \"pipeline\": ..., \"set\": [...]}");
      only_keys(p, {"name", "pipeline", "set", "note", "run_dir"}, path, at);
      Prepared run;
      run.name = required_name(p, path, at, "${prepare.NAME} names its run folder");
      if (!prepared.insert(run.name).second) fail(path, at + ".name", "'" + run.name + "' is used twice");
      if (!p.contains("pipeline")) fail(path, at + ".pipeline", "missing (the pipeline this run runs)");
      run.pipeline = pipeline_path(p["pipeline"], path, at + ".pipeline");
      if (p.contains("set")) run.overrides = string_list(p["set"], path, at + ".set", prepared);
      if (p.contains("note") && p["note"].is_string()) run.note = p["note"].get<std::string>();
      if (p.contains("run_dir")) {
        if (!p["run_dir"].is_string() || p["run_dir"].get<std::string>().empty())
          fail(path, at + ".run_dir", "expected a folder (relative to the working folder, as --out)");
        run.run_dir = p["run_dir"].get<std::string>();
        for (const Prepared& other : s.prepare)
          if (!other.run_dir.empty() &&
              fs::path(other.run_dir).lexically_normal() == fs::path(run.run_dir).lexically_normal())
            fail(path, at + ".run_dir", "'" + run.run_dir + "' is also prepared run '" + other.name + "''s folder");
      }
      s.prepare.push_back(std::move(run));
    }
  }
  if (j.contains("set")) s.overrides = string_list(j["set"], path, "set", prepared);

  if (j.contains("variants")) s.axes.push_back({"variant", parse_entries(j["variants"], path, "variants", prepared), 0});
  if (j.contains("axes")) {
    const json& axes = j["axes"];
    if (!axes.is_object() || axes.empty())
      fail(path, "axes", "expected {\"AXIS\": [{\"name\": ..., \"set\": [...]}, ...], ...}");
    for (const auto& [axis_name, list] : axes.items()) {
      if (!std::regex_match(axis_name, std::regex("[A-Za-z0-9_]+")))
        fail(path, "axes." + axis_name, "expected an axis name of letters, digits and _");
      if (s.axis_index(axis_name) != kNoAxis) fail(path, "axes." + axis_name, "the axis 'variant' is the variants list");
      s.axes.push_back({axis_name, parse_entries(list, path, "axes." + axis_name, prepared), 0});
    }
  }
  if (j.contains("baseline")) {
    const json& b = j["baseline"];
    if (!b.is_object()) fail(path, "baseline", "expected {\"AXIS\": \"ENTRY\", ...}");
    for (const auto& [axis_name, entry_name] : b.items()) {
      const std::size_t a = s.axis_index(axis_name);
      if (a == kNoAxis) fail(path, "baseline." + axis_name, "no such axis");
      const auto& entries = s.axes[a].entries;
      const auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
        return entry_name.is_string() && e.name == entry_name.get<std::string>();
      });
      if (it == entries.end()) fail(path, "baseline." + axis_name, "expected the name of one of the axis's entries");
      s.axes[a].baseline = static_cast<std::size_t>(it - entries.begin());
    }
  }
  build_cells(s);
  for (const char* key : {"rows", "cols"})
    if (j.contains(key) && !j[key].is_string()) fail(path, key, "expected an axis name");
  try {
    s.set_pivot(j.value("rows", ""), j.value("cols", ""));
  } catch (const std::runtime_error& e) {
    fail(path, "", e.what());
  }
  return s;
}

std::string substitute_prepared(const std::string& text, const std::map<std::string, std::string>& folders) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t at = text.find(kPrepareOpen); at != std::string::npos; at = text.find(kPrepareOpen, from)) {
    const std::size_t close = text.find('}', at);
    if (close == std::string::npos) throw std::runtime_error("'" + text + "': ${prepare. without a closing }");
    const std::string name = text.substr(at + kPrepareOpen.size(), close - at - kPrepareOpen.size());
    const auto folder = folders.find(name);
    if (folder == folders.end()) throw std::runtime_error("'" + text + "': ${prepare." + name + "} names no prepared run");
    out += text.substr(from, at - from) + folder->second;
    from = close + 1;
  }
  return out + text.substr(from);
}

namespace {

// The description's prose: its top-level "description" and the nodes' "note"s.
void drop_prose(nlohmann::json& j) {
  if (!j.is_object()) return;
  j.erase("description");
  if (j.contains("nodes") && j["nodes"].is_array())
    for (auto& node : j["nodes"])
      if (node.is_object()) node.erase("note");
}

}  // namespace

std::string description_differences(const std::string& recorded, const std::string& asked, std::size_t shown) {
  nlohmann::json there = nlohmann::json::parse(recorded), now = nlohmann::json::parse(asked);
  drop_prose(there);
  drop_prose(now);
  const nlohmann::json patch = nlohmann::json::diff(there, now);
  std::string out;
  for (std::size_t i = 0; i < patch.size() && i < shown; ++i) {
    const std::string op = patch[i]["op"];
    std::string path = patch[i]["path"];
    if (path.size() >= 2 && path.compare(path.size() - 2, 2, "/-") == 0) {  // appended to an array: name its index
      const std::string parent = path.substr(0, path.size() - 2);
      path = parent + "/" + std::to_string(there.at(nlohmann::json::json_pointer(parent)).size());
    }
    const nlohmann::json::json_pointer at(path);
    out += (out.empty() ? "" : "; ") + (path.empty() ? std::string("the whole description") : path) + ": ";
    if (op == "add") out += "absent there, " + patch[i]["value"].dump() + " now";
    else if (op == "remove") out += there.at(at).dump() + " there, absent now";
    else out += there.at(at).dump() + " there, " + patch[i]["value"].dump() + " now";
  }
  if (patch.size() > shown) out += "; and " + std::to_string(patch.size() - shown) + " more";
  return out;
}

}  // namespace flowrun::ablation
