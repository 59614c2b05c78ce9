// Validation of a parsed description against the registry. Collects every problem
// (not just the first), each with the JSON pointer of the value at fault, so that
// one run of `flowrun validate` shows everything to fix.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "flowrun/description.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"

namespace flowrun {
using json = nlohmann::json;

namespace {

constexpr std::int64_t kDefaultPrefetch = 256;
const std::vector<std::string> kTopLevelKeys = {"name", "description", "seed", "device", "threads",
                                                "prefetch", "plugins", "nodes", "edges"};
const std::vector<std::string> kNodeKeys = {"id", "plugin", "params", "concurrency", "note"};

std::string describe_json(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::string join(const std::vector<std::string>& items, const std::string& separator = ", ") {
  std::string text;
  for (const std::string& item : items) text += (text.empty() ? "" : separator) + item;
  return text;
}

std::vector<std::string> port_names(const std::vector<PortSpec>& ports) {
  std::vector<std::string> names;
  for (const PortSpec& p : ports) names.push_back(p.name);
  return names;
}

// Checks one node's parameters against its plugin's schema and converts them to
// typed values; problems are appended to the caller's list.
class ParamChecker {
 public:
  explicit ParamChecker(std::vector<Problem>& problems) : problems_(problems) {}

  Params check(const PluginInfo& plugin, const json& given, const std::string& pointer) {
    const Schema& schema = plugin.params;
    for (const auto& item : given.items()) {
      if (!schema.find(item.key())) {
        const std::vector<std::string> names = schema.names();
        problem(pointer + "/" + item.key(),
                "plugin '" + plugin.name + "' has no parameter '" + item.key() + "'" +
                    did_you_mean(item.key(), names) +
                    (names.empty() ? "; it takes no parameters" : "; its parameters: " + join(names)));
      }
    }
    std::map<std::string, ParamValue> values;
    for (const ParamSpec& spec : schema.specs()) {
      if (!given.contains(spec.name())) {
        if (spec.required()) {
          problem(pointer, "missing required parameter '" + spec.name() + "' (" + param_type_name(spec.type()) +
                               ": " + spec.doc() + ")");
        } else {
          values.emplace(spec.name(), *spec.default_value());
        }
        continue;
      }
      std::optional<ParamValue> value = convert(given[spec.name()], spec, pointer + "/" + spec.name());
      if (value) values.emplace(spec.name(), std::move(*value));
    }
    return Params(std::move(values));
  }

  // Checks a number against a spec's bounds; `what` prefixes the message for list elements.
  bool in_range(double v, const ParamSpec& spec, const std::string& pointer, const json& shown) {
    if (v < spec.lower() || v > spec.upper()) {
      const bool list = spec.type() == ParamType::IntList || spec.type() == ParamType::FloatList;
      std::string range = ParamSpec(spec.name(), ParamType::Float, std::nullopt, "-")
                              .range(spec.lower(), spec.upper())
                              .describe_constraint();
      problem(pointer, std::string(list ? "expected each value " : "expected ") +
                           (list ? "" : std::string(param_type_name(spec.type())) + " ") + "in " + range + ", got " +
                           shown.dump());
      return false;
    }
    return true;
  }

  std::optional<std::int64_t> as_integer(const json& v) {
    if (v.is_number_integer()) return v.get<std::int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::floor(d) == d && std::fabs(d) < 9e15) return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
  }

  std::optional<ParamValue> convert(const json& v, const ParamSpec& spec, const std::string& pointer) {
    const auto mistyped = [&](const std::string& expected) {
      problem(pointer, "expected " + expected + ", got " + describe_json(v));
      return std::nullopt;
    };
    switch (spec.type()) {
      case ParamType::Bool:
        if (!v.is_boolean()) return mistyped("a boolean (true or false)");
        return ParamValue(v.get<bool>());
      case ParamType::Int: {
        auto i = as_integer(v);
        if (!i) return mistyped("an integer");
        if (!in_range(static_cast<double>(*i), spec, pointer, v)) return std::nullopt;
        return ParamValue(*i);
      }
      case ParamType::Float:
        if (!v.is_number()) return mistyped("a number");
        if (!in_range(v.get<double>(), spec, pointer, v)) return std::nullopt;
        return ParamValue(v.get<double>());
      case ParamType::String:
        if (!v.is_string()) return mistyped("a string");
        return ParamValue(v.get<std::string>());
      case ParamType::Choice: {
        if (!v.is_string()) return mistyped("one of " + spec.describe_constraint());
        const std::string s = v.get<std::string>();
        if (std::find(spec.choices().begin(), spec.choices().end(), s) == spec.choices().end()) {
          problem(pointer, "expected one of " + spec.describe_constraint() + ", got \"" + s + "\"" +
                               did_you_mean(s, spec.choices()));
          return std::nullopt;
        }
        return ParamValue(s);
      }
      case ParamType::IntList:
      case ParamType::FloatList:
      case ParamType::StringList:
        return convert_list(v, spec, pointer);
    }
    return std::nullopt;
  }

  std::optional<ParamValue> convert_list(const json& v, const ParamSpec& spec, const std::string& pointer) {
    if (!v.is_array()) {
      problem(pointer, "expected a " + std::string(param_type_name(spec.type())) + " (" +
                           spec.describe_constraint() + "), got " + describe_json(v));
      return std::nullopt;
    }
    if (v.size() < spec.min_len() || v.size() > spec.max_len()) {
      problem(pointer, "expected " + spec.describe_constraint() + ", got " + std::to_string(v.size()) + " value(s)");
      return std::nullopt;
    }
    std::vector<std::int64_t> ints;
    std::vector<double> numbers;
    std::vector<std::string> strings;
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string at = pointer + "/" + std::to_string(i);
      const json& e = v[i];
      if (spec.type() == ParamType::StringList) {
        if (!e.is_string()) {
          problem(at, "expected a string, got " + describe_json(e));
          ok = false;
        } else {
          strings.push_back(e.get<std::string>());
        }
      } else if (spec.type() == ParamType::IntList) {
        auto value = as_integer(e);
        if (!value) {
          problem(at, "expected an integer, got " + describe_json(e));
          ok = false;
        } else if (in_range(static_cast<double>(*value), spec, at, e)) {
          ints.push_back(*value);
        } else {
          ok = false;
        }
      } else {
        if (!e.is_number()) {
          problem(at, "expected a number, got " + describe_json(e));
          ok = false;
        } else if (in_range(e.get<double>(), spec, at, e)) {
          numbers.push_back(e.get<double>());
        } else {
          ok = false;
        }
      }
    }
    if (!ok) return std::nullopt;
    if (spec.is_ascending()) {
      const auto descending_at = [&](const auto& values) {
        for (std::size_t i = 1; i < values.size(); ++i)
          if (values[i] < values[i - 1]) return static_cast<int>(i);
        return -1;
      };
      const int at = spec.type() == ParamType::IntList ? descending_at(ints) : descending_at(numbers);
      if (at > 0) {
        problem(pointer, "expected ascending values ([low, high] with low <= high), got " + describe_json(v));
        return std::nullopt;
      }
    }
    if (spec.type() == ParamType::IntList) return ParamValue(std::move(ints));
    if (spec.type() == ParamType::FloatList) return ParamValue(std::move(numbers));
    return ParamValue(std::move(strings));
  }

 private:
  void problem(std::string pointer, std::string message) {
    problems_.push_back({std::move(pointer), std::move(message)});
  }
  std::vector<Problem>& problems_;
};

class Validator {
 public:
  Validator(const json& document, Registry& registry, PackLoader& loader, std::string source, std::string base_dir)
      : doc_(document), registry_(registry), loader_(loader) {
    out_.source = std::move(source);
    out_.base_dir = std::move(base_dir);
  }

  Description run() {
    if (!doc_.is_object()) {
      problem("", "expected a JSON object with \"name\", \"nodes\" and \"edges\", got " + describe_json(doc_));
      finish();
    }
    check_top_level();
    load_packs();
    check_nodes();
    check_edges();
    if (problems_.empty()) order_and_resolve_kinds();
    if (problems_.empty()) check_connections();
    if (problems_.empty()) run_plugin_checks();
    finish();
    out_.resolved_json = doc_.dump(2);
    return std::move(out_);
  }

 private:
  void problem(std::string pointer, std::string message) {
    problems_.push_back({std::move(pointer), std::move(message)});
  }
  void finish() {
    if (!problems_.empty()) throw DescriptionError(out_.source, problems_);
  }

  // Typed reads of optional top-level/node fields; a wrong type is a problem.
  bool read_string(const json& obj, const std::string& key, const std::string& pointer, std::string& target) {
    if (!obj.contains(key)) return false;
    if (!obj[key].is_string()) {
      problem(pointer + "/" + key, "expected a string, got " + describe_json(obj[key]));
      return false;
    }
    target = obj[key].get<std::string>();
    return true;
  }
  bool read_integer(const json& obj, const std::string& key, const std::string& pointer, std::int64_t lo,
                    std::int64_t& target, const std::string& meaning) {
    if (!obj.contains(key)) return false;
    const json& v = obj[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < lo) {
      problem(pointer + "/" + key, "expected an integer >= " + std::to_string(lo) + " (" + meaning + "), got " +
                                       describe_json(v));
      return false;
    }
    target = v.get<std::int64_t>();
    return true;
  }

  void check_top_level() {
    for (const auto& item : doc_.items()) {
      if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), item.key()) == kTopLevelKeys.end()) {
        problem("/" + item.key(), "unknown key '" + item.key() + "'" + did_you_mean(item.key(), kTopLevelKeys) +
                                      "; known keys: " + join(kTopLevelKeys));
      }
    }
    if (!read_string(doc_, "name", "", out_.name) && !doc_.contains("name")) {
      problem("", "missing \"name\": a short name for the pipeline (used for the run folder)");
    }
    read_string(doc_, "description", "", out_.summary);
    if (doc_.contains("seed")) {
      const json& v = doc_["seed"];
      if (v.is_number_unsigned()) out_.seed = v.get<std::uint64_t>();
      else if (v.is_number_integer() && v.get<std::int64_t>() >= 0) out_.seed = static_cast<std::uint64_t>(v.get<std::int64_t>());
      else problem("/seed", "expected a non-negative integer, got " + describe_json(v));
    }
    if (read_string(doc_, "device", "", out_.device)) {
      const std::string& d = out_.device;
      const bool ok = d == "auto" || d == "cpu" || d == "cuda" ||
                      (d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
                       d.find_first_not_of("0123456789", 5) == std::string::npos);
      if (!ok) problem("/device", "expected \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", got \"" + d + "\"");
    }
    std::int64_t threads = 0;
    if (read_integer(doc_, "threads", "", 0, threads, "0 = all cores")) out_.threads = static_cast<int>(threads);
    out_.prefetch = kDefaultPrefetch;
    read_integer(doc_, "prefetch", "", 2, out_.prefetch, "items in flight per source");
    if (!doc_.contains("nodes")) problem("", "missing \"nodes\": the list of stages");
    else if (!doc_["nodes"].is_array() || doc_["nodes"].empty())
      problem("/nodes", "expected a non-empty array of nodes, got " + describe_json(doc_["nodes"]));
    if (doc_.contains("edges") && !doc_["edges"].is_array())
      problem("/edges", "expected an array of edges such as \"a -> b\", got " + describe_json(doc_["edges"]));
  }

  void load_packs() {
    if (!doc_.contains("plugins")) return;
    const json& packs = doc_["plugins"];
    if (!packs.is_array()) {
      problem("/plugins", "expected an array of plugin pack names or paths, got " + describe_json(packs));
      return;
    }
    for (std::size_t i = 0; i < packs.size(); ++i) {
      const std::string pointer = "/plugins/" + std::to_string(i);
      if (!packs[i].is_string()) {
        problem(pointer, "expected a pack name or path to a .so, got " + describe_json(packs[i]));
        continue;
      }
      try {
        loader_.load(packs[i].get<std::string>(), out_.base_dir, registry_);
        out_.plugin_packs.push_back(packs[i].get<std::string>());
      } catch (const std::exception& e) {
        problem(pointer, e.what());
      }
    }
  }

  void check_nodes() {
    if (!doc_.contains("nodes") || !doc_["nodes"].is_array()) return;
    const json& nodes = doc_["nodes"];
    std::map<std::string, std::string> first_seen;  // id -> pointer
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const std::string pointer = "/nodes/" + std::to_string(i);
      const json& n = nodes[i];
      NodeDesc node;
      node.pointer = pointer;
      if (!n.is_object()) {
        problem(pointer, "expected a node object {\"id\": ..., \"plugin\": ..., \"params\": {...}}, got " +
                             describe_json(n));
        out_.nodes.push_back(node);
        continue;
      }
      for (const auto& item : n.items()) {
        if (std::find(kNodeKeys.begin(), kNodeKeys.end(), item.key()) == kNodeKeys.end()) {
          problem(pointer + "/" + item.key(), "unknown node key '" + item.key() + "'" +
                                                  did_you_mean(item.key(), kNodeKeys) + "; node keys: " + join(kNodeKeys));
        }
      }
      if (!read_string(n, "id", pointer, node.id) && !n.contains("id")) problem(pointer, "missing \"id\"");
      else if (n["id"].is_string() && node.id.empty())
        problem(pointer + "/id", "empty node id; name the node, e.g. \"decode\" (edges refer to it)");
      if (!node.id.empty()) {
        if (node.id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") !=
            std::string::npos) {
          problem(pointer + "/id", "node id '" + node.id + "' may only use letters, digits, '_' and '-' "
                                   "(a '.' would be read as a port in edges)");
        }
        auto [it, inserted] = first_seen.emplace(node.id, pointer);
        if (!inserted) problem(pointer + "/id", "duplicate node id '" + node.id + "' (first used at " + it->second + ")");
      }
      std::string plugin_name;
      if (!read_string(n, "plugin", pointer, plugin_name) && !n.contains("plugin")) {
        problem(pointer, "missing \"plugin\" (`flowrun plugins` lists them)");
      }
      if (n.contains("plugin") && n["plugin"].is_string() && plugin_name.empty()) {
        problem(pointer + "/plugin", "empty plugin name (`flowrun plugins` lists them)");
      } else if (!plugin_name.empty()) {
        node.plugin = registry_.find(plugin_name);
        if (!node.plugin) {
          problem(pointer + "/plugin", "unknown plugin '" + plugin_name + "'" +
                                           did_you_mean(plugin_name, registry_.names()) +
                                           "; `flowrun plugins` lists them");
        }
      }
      if (n.contains("note") && !n["note"].is_string()) problem(pointer + "/note", "expected a string");
      if (node.plugin) {
        check_params(n, pointer, node);
        check_concurrency(n, pointer, node);
      }
      out_.nodes.push_back(std::move(node));
    }
  }

  void check_concurrency(const json& n, const std::string& pointer, NodeDesc& node) {
    if (!n.contains("concurrency")) return;
    std::int64_t value = 0;
    if (node.plugin->role != Role::Map) {
      problem(pointer + "/concurrency", "\"concurrency\" applies to map (per-item) stages; plugin '" +
                                            node.plugin->name + "' is a " + role_name(node.plugin->role) +
                                            " stage and always runs one call at a time");
      return;
    }
    if (read_integer(n, "concurrency", pointer, 0, value, "parallel calls, 0 = unlimited"))
      node.concurrency = static_cast<int>(value);
  }

  void check_params(const json& n, const std::string& node_pointer, NodeDesc& node) {
    const std::string pointer = node_pointer + "/params";
    if (n.contains("params") && !n["params"].is_object()) {
      problem(pointer, "expected an object of parameters, got " + describe_json(n["params"]));
      return;
    }
    ParamChecker checker(problems_);
    node.params = checker.check(*node.plugin, n.contains("params") ? n["params"] : json::object(), pointer);
  }

  // --- edges ---

  struct Endpoint {
    int node = -1;
    int port = -1;
  };

  // "node" or "node.port", as the source (output) or target (input) of an edge.
  std::optional<Endpoint> resolve_endpoint(const std::string& text, bool output, const std::string& pointer) {
    const std::size_t dot = text.find('.');
    const std::string id = text.substr(0, dot);
    const std::string port = dot == std::string::npos ? "" : text.substr(dot + 1);
    std::vector<std::string> ids;
    int index = -1;
    for (std::size_t i = 0; i < out_.nodes.size(); ++i) {
      ids.push_back(out_.nodes[i].id);
      if (out_.nodes[i].id == id) index = static_cast<int>(i);
    }
    if (id.empty()) {
      problem(pointer, "empty node name in edge; write \"from -> to\" or \"from.port -> to.port\"");
      return std::nullopt;
    }
    if (index < 0) {
      problem(pointer, "unknown node '" + id + "'" + did_you_mean(id, ids));
      return std::nullopt;
    }
    const NodeDesc& node = out_.nodes[static_cast<std::size_t>(index)];
    if (!node.plugin) return std::nullopt;  // already reported
    const std::vector<PortSpec>& ports = output ? node.plugin->outputs : node.plugin->inputs;
    const char* direction = output ? "output" : "input";
    if (ports.empty()) {
      problem(pointer, "node '" + id + "' (plugin " + node.plugin->name + ", a " + role_name(node.plugin->role) +
                           " stage) has no " + direction + " ports");
      return std::nullopt;
    }
    if (port.empty()) {
      // Several ports: add_hop picks the one whose kind fits the other end (for an
      // output, the first when several fit).
      return Endpoint{index, ports.size() > 1 ? -1 : 0};
    }
    for (std::size_t p = 0; p < ports.size(); ++p)
      if (ports[p].name == port) return Endpoint{index, static_cast<int>(p)};
    for (const RetiredPort& retired : node.plugin->retired_ports) {
      if (retired.name != port || retired.input == output) continue;
      problem(pointer, "node '" + id + "' (plugin " + node.plugin->name + ") has no " + direction + " port '" + port +
                           "' any more: " + retired.migration);
      return std::nullopt;
    }
    problem(pointer, "node '" + id + "' (plugin " + node.plugin->name + ") has no " + direction + " port '" + port +
                         "'" + did_you_mean(port, port_names(ports)) + "; its " + direction +
                         " ports: " + join(port_names(ports)));
    return std::nullopt;
  }

  void add_hop(const std::string& from, const std::string& to, const std::string& pointer) {
    auto a = resolve_endpoint(from, true, pointer);
    auto b = resolve_endpoint(to, false, pointer);
    if (!a || !b) return;
    if (a->port < 0 || b->port < 0) {
      const PluginInfo& out_plugin = *out_.nodes[static_cast<std::size_t>(a->node)].plugin;
      const PluginInfo& in_plugin = *out_.nodes[static_cast<std::size_t>(b->node)].plugin;
      std::vector<Endpoint> fits;
      for (std::size_t i = 0; i < out_plugin.outputs.size(); ++i) {
        if (a->port >= 0 && static_cast<int>(i) != a->port) continue;
        for (std::size_t j = 0; j < in_plugin.inputs.size(); ++j) {
          if (b->port >= 0 && static_cast<int>(j) != b->port) continue;
          if (kind_accepts(in_plugin.inputs[j].kind, out_plugin.outputs[i].kind))
            fits.push_back({static_cast<int>(i), static_cast<int>(j)});
        }
      }
      // Several outputs fit (a sink that takes anything): the first, the node's main output.
      // Inputs are never guessed: which input of a join an edge feeds changes the result.
      if (fits.size() > 1 && b->port >= 0) {
        for (const Endpoint& f : fits)
          if (f.node == 0) {
            fits = {f};
            break;
          }
      }
      if (fits.size() != 1) {
        const bool output_side = a->port < 0;
        const NodeDesc& node = out_.nodes[static_cast<std::size_t>(output_side ? a->node : b->node)];
        const auto& ports = output_side ? out_plugin.outputs : in_plugin.inputs;
        problem(pointer, "node '" + node.id + "' has several " + (output_side ? "output" : "input") + " ports (" +
                             join(port_names(ports)) + ") and " + (fits.empty() ? "none" : "more than one") +
                             " fits the other end of the edge: name one, as " + node.id + "." + ports[0].name);
        return;
      }
      a->port = fits[0].node;  // (output port, input port) pairs
      b->port = fits[0].port;
    }
    EdgeDesc edge;
    edge.from_node = a->node;
    edge.from_port = a->port;
    edge.to_node = b->node;
    edge.to_port = b->port;
    edge.pointer = pointer;
    out_.edges.push_back(edge);
  }

  static std::string trim(const std::string& s) {
    const std::size_t a = s.find_first_not_of(" \t");
    if (a == std::string::npos) return "";
    const std::size_t b = s.find_last_not_of(" \t");
    return s.substr(a, b - a + 1);
  }

  void check_edges() {
    if (!doc_.contains("edges") || !doc_["edges"].is_array()) return;
    const json& edges = doc_["edges"];
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const std::string pointer = "/edges/" + std::to_string(i);
      const json& e = edges[i];
      if (e.is_string()) {
        // A chain: "a -> b -> c.in".
        std::vector<std::string> hops;
        const std::string text = e.get<std::string>();
        std::size_t start = 0;
        while (true) {
          const std::size_t arrow = text.find("->", start);
          hops.push_back(trim(text.substr(start, arrow == std::string::npos ? std::string::npos : arrow - start)));
          if (arrow == std::string::npos) break;
          start = arrow + 2;
        }
        if (hops.size() < 2) {
          problem(pointer, "expected an edge such as \"a -> b\" or a chain \"a -> b -> c\", got \"" + text + "\"");
          continue;
        }
        for (std::size_t h = 0; h + 1 < hops.size(); ++h) add_hop(hops[h], hops[h + 1], pointer);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        add_hop(e[0].get<std::string>(), e[1].get<std::string>(), pointer);
      } else {
        problem(pointer, "expected \"from -> to\" or [\"from\", \"to\"], got " + describe_json(e));
      }
    }
  }

  // --- graph shape ---

  void order_and_resolve_kinds() {
    const std::size_t n = out_.nodes.size();
    std::vector<int> indegree(n, 0);
    std::vector<std::vector<int>> next(n);
    for (const EdgeDesc& e : out_.edges) {
      next[static_cast<std::size_t>(e.from_node)].push_back(e.to_node);
      ++indegree[static_cast<std::size_t>(e.to_node)];
    }
    // Kahn's algorithm, smallest index first so the order follows the file.
    std::set<int> ready;
    for (std::size_t i = 0; i < n; ++i)
      if (indegree[i] == 0) ready.insert(static_cast<int>(i));
    while (!ready.empty()) {
      const int i = *ready.begin();
      ready.erase(ready.begin());
      out_.topological_order.push_back(i);
      for (int j : next[static_cast<std::size_t>(i)])
        if (--indegree[static_cast<std::size_t>(j)] == 0) ready.insert(j);
    }
    if (out_.topological_order.size() != n) {
      report_cycle(indegree, next);
      return;
    }
    for (NodeDesc& node : out_.nodes) {
      node.input_kinds.assign(node.plugin->inputs.size(), "");
      node.output_kinds.assign(node.plugin->outputs.size(), "");
    }
    for (int i : out_.topological_order) {
      NodeDesc& node = out_.nodes[static_cast<std::size_t>(i)];
      for (std::size_t p = 0; p < node.output_kinds.size(); ++p) {
        const std::string& declared = node.plugin->outputs[p].kind;
        node.output_kinds[p] = declared == kSameKind ? node.input_kinds.empty() ? "" : node.input_kinds[0] : declared;
      }
      for (EdgeDesc& e : out_.edges) {
        if (e.from_node != i) continue;
        e.kind = node.output_kinds[static_cast<std::size_t>(e.from_port)];
        NodeDesc& target = out_.nodes[static_cast<std::size_t>(e.to_node)];
        const PortSpec& in = target.plugin->inputs[static_cast<std::size_t>(e.to_port)];
        std::string& seen = target.input_kinds[static_cast<std::size_t>(e.to_port)];
        if (!seen.empty()) {
          problem(e.pointer, "input '" + in.name + "' of node '" + target.id +
                                 "' already has an edge; each input takes one (add a stage that merges streams)");
          continue;
        }
        if (!e.kind.empty() && !kind_accepts(in.kind, e.kind)) {
          const PortSpec& out_port = node.plugin->outputs[static_cast<std::size_t>(e.from_port)];
          problem(e.pointer, "kind mismatch: node '" + node.id + "' output '" + out_port.name + "' carries '" +
                                 e.kind + "' but node '" + target.id + "' (plugin " + target.plugin->name +
                                 ") input '" + in.name + "' expects '" + in.kind +
                                 "'; a stage converting one to the other is missing between them");
        }
        seen = e.kind.empty() ? "?" : e.kind;
      }
    }
  }

  void report_cycle(const std::vector<int>& indegree, const std::vector<std::vector<int>>& next) {
    // Walk from any node left with inputs along edges that stay in the leftover set
    // until a node repeats: that loop is a cycle to show.
    std::vector<int> path;
    std::vector<int> position(out_.nodes.size(), -1);
    int at = -1;
    for (std::size_t i = 0; i < indegree.size(); ++i)
      if (indegree[i] > 0) {
        at = static_cast<int>(i);
        break;
      }
    while (at >= 0 && position[static_cast<std::size_t>(at)] < 0) {
      position[static_cast<std::size_t>(at)] = static_cast<int>(path.size());
      path.push_back(at);
      int step = -1;
      for (int j : next[static_cast<std::size_t>(at)])
        if (indegree[static_cast<std::size_t>(j)] > 0) {
          step = j;
          break;
        }
      at = step;
    }
    std::string loop;
    if (at >= 0) {
      for (std::size_t k = static_cast<std::size_t>(position[static_cast<std::size_t>(at)]); k < path.size(); ++k)
        loop += out_.nodes[static_cast<std::size_t>(path[k])].id + " -> ";
      loop += out_.nodes[static_cast<std::size_t>(at)].id;
    }
    problem("/edges", "the edges form a cycle (" + loop + "); data must flow one way from sources");
  }

  void check_connections() {
    bool any_source = false;
    for (const NodeDesc& node : out_.nodes) {
      if (node.plugin->role == Role::Source) any_source = true;
      bool any_connected = node.plugin->inputs.empty();
      for (std::size_t p = 0; p < node.plugin->inputs.size(); ++p) {
        const PortSpec& in = node.plugin->inputs[p];
        if (!node.input_kinds[p].empty()) {
          any_connected = true;
        } else if (in.required) {
          problem(node.pointer, "input port '" + in.name + "' of node '" + node.id + "' (plugin " +
                                    node.plugin->name + ") is not connected; add an edge \"SOMETHING -> " + node.id +
                                    (node.plugin->inputs.size() > 1 ? "." + in.name : "") + "\"");
        }
      }
      if (!any_connected) {
        problem(node.pointer, "node '" + node.id + "' has no connected input, so it would never receive data");
      }
    }
    if (!any_source) problem("/nodes", "the pipeline has no source stage; nothing would produce data");
  }

  // Each plugin's own check of its node against its parameters and its neighbours.
  void run_plugin_checks() {
    for (std::size_t i = 0; i < out_.nodes.size(); ++i) {
      const NodeDesc& node = out_.nodes[i];
      if (!node.plugin->check) continue;
      CheckedNode checked;
      checked.id = node.id;
      checked.params = &node.params;
      checked.inputs.assign(node.plugin->inputs.size(), {});
      for (const EdgeDesc& e : out_.edges) {
        if (e.to_node != static_cast<int>(i)) continue;
        for (int u : out_.upstream_of(e.from_node)) {
          const NodeDesc& up = out_.nodes[static_cast<std::size_t>(u)];
          checked.inputs[static_cast<std::size_t>(e.to_port)].push_back({up.id, up.plugin->name, &up.params});
        }
      }
      std::vector<CheckFinding> findings;
      try {
        node.plugin->check(checked, findings);
      } catch (const std::exception& e) {
        problem(node.pointer, "plugin " + node.plugin->name + " failed to check node '" + node.id + "': " + e.what());
      }
      for (const CheckFinding& f : findings)
        problem(node.pointer + (f.param.empty() ? "" : "/params/" + f.param), f.message);
    }
  }

  const json& doc_;
  Registry& registry_;
  PackLoader& loader_;
  Description out_;
  std::vector<Problem> problems_;
};

}  // namespace

std::vector<int> Description::upstream_of(int node) const {
  std::vector<int> found = {node};
  std::vector<bool> seen(nodes.size(), false);
  seen[static_cast<std::size_t>(node)] = true;
  for (std::size_t next = 0; next < found.size(); ++next) {
    for (const EdgeDesc& e : edges) {
      if (e.to_node != found[next] || seen[static_cast<std::size_t>(e.from_node)]) continue;
      seen[static_cast<std::size_t>(e.from_node)] = true;
      found.push_back(e.from_node);
    }
  }
  return found;
}

int Description::node_index(const std::string& id) const {
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].id == id) return static_cast<int>(i);
  return -1;
}

Params validate_params(const PluginInfo& plugin, const json& params, const std::string& source) {
  std::vector<Problem> problems;
  if (!params.is_object()) throw DescriptionError(source, "", "expected an object of parameters");
  Params out = ParamChecker(problems).check(plugin, params, "");
  if (!problems.empty()) throw DescriptionError(source, problems);
  return out;
}

Description validate_description(const json& document, Registry& registry, PackLoader& loader,
                                 const std::string& source, const std::string& base_dir) {
  return Validator(document, registry, loader, source, base_dir).run();
}

Description load_description(const std::string& path, const std::vector<std::string>& overrides,
                             Registry& registry, PackLoader& loader) {
  json document = read_description_json(path);
  apply_overrides(document, overrides);
  const std::string base_dir = std::filesystem::absolute(path).parent_path().string();
  return validate_description(document, registry, loader, path, base_dir);
}

}  // namespace flowrun
