// A plugin: a stage type registered under a unique name, with everything the
// runtime, the validator and `flowrun plugins NAME` need to know about it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/schema.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

// Port kinds are names of payload types, e.g. "sample/encoded", "sample/image",
// "batch". Two special kinds:
constexpr const char* kAnyKind = "any";   // input: accepts every kind
constexpr const char* kSameKind = "same"; // output: whatever kind arrived on input 0

// An input may accept several kinds, written "a|b" ("sample/image|sample/tensor").
bool kind_accepts(const std::string& accepted, const std::string& kind);

struct PortSpec {
  std::string name;
  std::string kind;
  std::string doc;
  bool required = true;  // inputs only: must be connected
};

enum class Role { Source, Map, Ordered };
const char* role_name(Role role);

// What a plugin's check sees of its node before any run: the validated parameters
// and, per input port, every node upstream of it (nearest first) with its plugin and
// parameters. Lets a plugin refuse combinations no single parameter's range can
// express: low > high, uint8 batches nobody normalizes, a mix stage on an eval chain.
struct CheckedNode {
  struct Upstream {
    std::string id;
    std::string plugin;
    const Params* params = nullptr;
  };
  std::string id;
  const Params* params = nullptr;
  std::vector<std::vector<Upstream>> inputs;  // per input port; empty when unconnected
};

// A mistake a check found: `param` names the parameter it is about ("" = the node as a
// whole); `message` says what is wrong and what to do.
struct CheckFinding {
  std::string param;
  std::string message;
};

// A port a plugin had in an earlier version of flowrun: an edge that names it is refused
// with `migration` (what to write instead) rather than a bare "no such port".
struct RetiredPort {
  std::string name;
  bool input = true;
  std::string migration;
};

struct PluginInfo {
  std::string name;         // unique; [a-z0-9_.]+ ; packs prefix theirs ("mypack.blur")
  std::string summary;      // one line, for `flowrun plugins`
  std::string description;  // paragraphs for `flowrun plugins NAME`: behaviour, a JSON example
  Role role = Role::Map;
  std::vector<PortSpec> inputs;
  std::vector<PortSpec> outputs;
  Schema params;
  std::function<std::unique_ptr<Stage>(const StageArgs&)> create;
  // Optional: runs in `flowrun validate` and before every run, once the graph is
  // known; each finding is reported with the node's JSON location (exit 2, nothing run).
  std::function<void(const CheckedNode&, std::vector<CheckFinding>&)> check;
  // Ordered stages without outputs (sinks that write files: checkpoints, TensorBoard,
  // the report): run on a thread of their own, beside the runtime's, so that they run as
  // soon as their input arrives even when compute keeps the runtime's threads busy, and
  // compute never waits for their disk. Stream order and one call at a time still hold.
  bool own_thread = false;
  std::vector<RetiredPort> retired_ports;
  std::string origin = "built-in";  // set by the registry: "built-in" or the pack's path
};

}  // namespace flowrun
