// Pipeline descriptions: reading the JSON file, applying --set overrides, and
// validating everything against the registry before anything runs. The result,
// a Description, is fully typed and checked: the runtime trusts it.
//
// Format (docs/description-format.md has the whole reference):
//   {
//     "name": "quickstart", "seed": 42, "device": "auto", "threads": 0, "prefetch": 256,
//     "plugins": ["mypack"],
//     "nodes": [ {"id": "numbers", "plugin": "counter_source", "params": {"count": 100}},
//                {"id": "sink", "plugin": "collect"} ],
//     "edges": [ "numbers -> sink" ]
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "flowrun/plugin.hpp"
#include "flowrun/schema.hpp"

namespace flowrun {

class Registry;
class PackLoader;

struct NodeDesc {
  std::string id;
  const PluginInfo* plugin = nullptr;
  Params params;
  int concurrency = 0;  // map stages: parallel calls; 0 = unlimited
  std::string pointer;  // JSON pointer of the node, for messages
  std::vector<std::string> input_kinds;   // resolved per input port ("" = unconnected)
  std::vector<std::string> output_kinds;  // resolved per output port ("same" resolved)
};

struct EdgeDesc {
  int from_node = 0;
  int from_port = 0;
  int to_node = 0;
  int to_port = 0;
  std::string kind;     // the kind that travels on it
  std::string pointer;  // where it was written
};

struct Description {
  std::string name;
  std::string summary;
  std::uint64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  int threads = 0;              // 0 = all cores
  std::int64_t prefetch = 256;  // items in flight per source
  std::vector<std::string> plugin_packs;
  std::vector<NodeDesc> nodes;
  std::vector<EdgeDesc> edges;
  std::vector<int> topological_order;
  std::string base_dir;  // folder of the description file: relative paths start here
  std::string source;    // file name, for messages
  std::string resolved_json;  // the description after --set, as run (saved with results)

  int node_index(const std::string& id) const;  // -1 if absent
  // Every node upstream of `node`, itself first, then breadth-first against the edges.
  std::vector<int> upstream_of(int node) const;
};

// Reads and parses a description file (comments allowed). Throws DescriptionError:
// unreadable file, or malformed JSON with line and column.
nlohmann::json read_description_json(const std::string& path);
nlohmann::json parse_description_json(const std::string& text, const std::string& source);

// Applies "PATH=VALUE" overrides. PATH uses dots; node ids select nodes
// ("nodes.augment.params.scale=0.5", "seed=3"); VALUE is JSON, or a plain string.
// Throws DescriptionError with source "--set PATH=VALUE" on a path that does not fit.
void apply_overrides(nlohmann::json& document, const std::vector<std::string>& overrides);

// Loads the packs the description names (into registry via loader) and checks
// everything. Throws DescriptionError listing every problem found, each located by
// JSON pointer.
Description validate_description(const nlohmann::json& document, Registry& registry, PackLoader& loader,
                                 const std::string& source, const std::string& base_dir);

// Checks parameters for one plugin outside a description (embedding, tests).
// Throws DescriptionError with pointers relative to the params object.
Params validate_params(const PluginInfo& plugin, const nlohmann::json& params, const std::string& source);

// Convenience for the command line and tests: read + overrides + validate.
Description load_description(const std::string& path, const std::vector<std::string>& overrides,
                             Registry& registry, PackLoader& loader);

}  // namespace flowrun
