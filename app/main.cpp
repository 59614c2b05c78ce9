// The flowrun command line: run, validate, graph, plugins. Exit codes:
//   0 success · 1 a stage failed · 2 bad description or usage · 130 SIGINT · 143 SIGTERM
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "device.hpp"
#include <chrono>
#include <ctime>
#include <filesystem>

#include "flowrun/atomic_file.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/memory.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/pipeline.hpp"
#include "flowrun/registry.hpp"
#include "flowrun/render.hpp"
#include "flowrun/version.hpp"
#include "signals.hpp"
#include "stages/builtin.hpp"
#include "stages/checkpoint/checkpoint_export.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/checkpoint_plugins.hpp"

namespace flowrun {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

const char* const kMainHelp = R"(flowrun - run a training pipeline described in a JSON file

Usage:
  flowrun PIPELINE.json [--set PATH=VALUE]... [--resume CHECKPOINT|auto] [--run-dir DIR]
                        [--log-level LEVEL]
  flowrun run PIPELINE.json [options]        same as above
  flowrun export CHECKPOINT.h5 OUT_FOLDER [--ema]
  flowrun validate PIPELINE.json [--set PATH=VALUE]...
  flowrun graph PIPELINE.json [--set PATH=VALUE]...
  flowrun plugins [NAME] [--markdown]
  flowrun --version | --help | COMMAND --help

Commands:
  run        check the description, then run it (the default)
  validate   only check the description: every problem, with its JSON location
  graph      print the pipeline as Graphviz DOT (flowrun graph p.json | dot -Tsvg > p.svg)
  plugins    list the plugins, or print one plugin's ports and parameters
  export     write a checkpoint's weights as safetensors with Hugging Face names

Options:
  --set PATH=VALUE   override a value of the description; PATH uses dots and node ids,
                     VALUE is JSON or a bare string. Repeatable. Examples:
                       --set seed=3   --set nodes.augment.plugin=randaugment
                       --set nodes.source.params.count=500
  --resume FILE      continue the run saved in a checkpoint (.h5) exactly where it was;
                     auto = the newest checkpoint under runs/NAME-*/checkpoints/, or with
                     --run-dir DIR the newest in DIR/checkpoints/ (none there: a fresh run)
  --run-dir DIR      the run folder (default runs/NAME-YYYYmmdd-HHMMSS; when resuming, the
                     checkpoint's run folder); it gets pipeline.json, flowrun.log, checkpoints/
                     and the outputs of stages whose paths are left empty (tensorboard/,
                     metrics.jsonl, eval.json, report.html...)
  --log-level LEVEL  trace, debug, info (default), warn, error, off

Environment:
  FLOWRUN_PLUGIN_PATH   colon-separated folders of plugin packs (*.so), all loaded at start

Exit codes:
  0 finished · 1 a stage failed · 2 invalid description or usage · 130 interrupted (SIGINT)
  143 terminated (SIGTERM)
)";

const std::map<std::string, std::string> kCommandHelp = {
    {"run", R"(flowrun run PIPELINE.json [--set PATH=VALUE]... [--log-level LEVEL]

Checks the description (exit 2 on any problem, nothing written), builds the flow graph and
runs it in a run folder (runs/NAME-YYYYmmdd-HHMMSS unless --run-dir; pipeline.json there
is the description as run). Ctrl-C (SIGINT) or SIGTERM stops cleanly: sources end their
streams, in-flight work is dropped, the train stage hands its last state to the checkpoint
stage, which saves it; a second Ctrl-C aborts at once. A stage that throws ends the run with
its node id, plugin and message (exit 1). Early stopping ends the run normally (exit 0).

--resume CHECKPOINT.h5 continues a run from a checkpoint: weights, optimizer, schedule,
generator states and each source's position in its epoch are restored, so the run ends with
the same weights, bit for bit on the CPU, as one that was never stopped. --resume auto takes
the newest checkpoint under runs/NAME-*/checkpoints/; with --run-dir DIR, the newest in
DIR/checkpoints/ only, and a fresh run in DIR when there is none (it says which).
)"},
    {"export", R"(flowrun export CHECKPOINT.h5 OUT_FOLDER [--ema]

Writes the model of a checkpoint as OUT_FOLDER/model.safetensors with Hugging Face ViT names
and OUT_FOLDER/config.json (with id2label from the training data's classes): loads in
transformers (ViTForImageClassification.from_pretrained) and as a flowrun `pretrained`.
--ema exports the EMA weights instead.
)"},
    {"validate", R"(flowrun validate PIPELINE.json [--set PATH=VALUE]...

Checks the description against the registered plugins without running anything: JSON syntax
(line and column), keys, plugin names, parameter names, types and ranges, node ids, edges,
port kinds, cycles and unconnected inputs. Prints every problem with its JSON pointer,
e.g. "p.json:/nodes/3/params/scale: expected number in [0, 1], got 1.5". Exit 0 or 2.
)"},
    {"graph", R"(flowrun graph PIPELINE.json [--set PATH=VALUE]...

Prints the validated pipeline as Graphviz DOT: node labels are "id / plugin", edge labels
the kind of data on the edge. Render with: flowrun graph p.json | dot -Tsvg > p.svg
)"},
    {"plugins", R"(flowrun plugins [NAME] [--markdown]

Without NAME, lists every registered plugin (built-in and from FLOWRUN_PLUGIN_PATH packs)
with its role and one-line summary. With NAME, prints its description, ports (kinds) and
full parameter table: type, default, range or choices, doc. --markdown prints the reference
of all built-in plugins as Markdown (docs/plugins.md is generated this way).
)"},
};

struct Args {
  std::string command = "run";
  std::vector<std::string> positional;
  std::vector<std::string> overrides;
  std::string log_level = "info";
  std::string resume;
  std::string run_dir;
  bool ema = false;
  bool markdown = false;
  bool help = false;
  bool version = false;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

Args parse_args(int argc, char** argv) {
  Args args;
  int i = 1;
  if (argc > 1 && kCommandHelp.count(argv[1])) {
    args.command = argv[1];
    i = 2;
  }
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](const std::string& flag) -> std::string {
      if (i + 1 >= argc) throw UsageError(flag + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") args.help = true;
    else if (a == "--version") args.version = true;
    else if (a == "--markdown") args.markdown = true;
    else if (a == "--ema") args.ema = true;
    else if (a == "--resume") args.resume = value(a);
    else if (a.rfind("--resume=", 0) == 0) args.resume = a.substr(9);
    else if (a == "--run-dir") args.run_dir = value(a);
    else if (a.rfind("--run-dir=", 0) == 0) args.run_dir = a.substr(10);
    else if (a == "--set") args.overrides.push_back(value(a));
    else if (a.rfind("--set=", 0) == 0) args.overrides.push_back(a.substr(6));
    else if (a == "--log-level") args.log_level = value(a);
    else if (a.rfind("--log-level=", 0) == 0) args.log_level = a.substr(12);
    else if (a.size() > 1 && a[0] == '-') throw UsageError("unknown option '" + a + "'");
    else args.positional.push_back(a);
  }
  return args;
}

void load_search_path_packs(Registry& registry, PackLoader& loader) {
  try {
    loader.load_search_path(registry);
  } catch (const std::exception& e) {
    throw DescriptionError("FLOWRUN_PLUGIN_PATH", "", e.what());
  }
}

std::string require_pipeline(const Args& args) {
  if (args.positional.size() != 1) {
    throw UsageError("expected one pipeline description (a .json file), got " +
                     std::to_string(args.positional.size()) + " arguments");
  }
  return args.positional[0];
}

Description load(const Args& args, Registry& registry, PackLoader& loader) {
  load_search_path_packs(registry, loader);
  Description d = load_description(require_pipeline(args), args.overrides, registry, loader);
  try {
    d.device = resolve_device(d.device);
  } catch (const std::exception& e) {
    throw DescriptionError(d.source, "/device", e.what());
  }
  return d;
}

int command_plugins(const Args& args, Registry& registry, PackLoader& loader) {
  load_search_path_packs(registry, loader);
  if (args.markdown) {
    std::cout << render_plugin_reference_markdown(registry);
    return kExitOk;
  }
  if (args.positional.empty()) {
    std::cout << registry.size() << " plugins (flowrun plugins NAME for details):\n" << render_plugin_list(registry);
    return kExitOk;
  }
  if (args.positional.size() > 1) throw UsageError("plugins takes at most one NAME");
  const std::string& name = args.positional[0];
  const PluginInfo* plugin = registry.find(name);
  if (!plugin) {
    std::cerr << "flowrun: unknown plugin '" << name << "'" << did_you_mean(name, registry.names())
              << "; `flowrun plugins` lists them\n";
    return kExitUsage;
  }
  std::cout << render_plugin_details(*plugin);
  return kExitOk;
}

void print_report(const RunReport& report) {
  log::info("run ", stop_reason_name(report.reason), " in ", log::fixed(report.seconds, 2), " s on ", report.threads,
            " threads");
  for (const NodeStats& n : report.nodes) {
    const double busy = static_cast<double>(n.busy_ns) * 1e-9;
    char line[256];
    std::snprintf(line, sizeof line, "  %-16s %-16s %10llu items %9.3f s busy %12.0f items/s busy", n.id.c_str(),
                  n.plugin.c_str(), static_cast<unsigned long long>(n.items), busy,
                  busy > 0 ? static_cast<double>(n.items) / busy : 0.0);
    log::info(line);
  }
  for (const SourceStats& s : report.sources) log::debug("  source ", s.id, ": peak ", s.peak_in_flight, " items in flight");
}

namespace fs = std::filesystem;

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", &tm);
  return text;
}

// --resume auto: the most recently written checkpoint of any runs/NAME-* folder.
std::string find_auto_checkpoint(const std::string& name) {
  std::string best;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& run : fs::directory_iterator("runs", ec)) {
    const std::string folder = run.path().filename().string();
    if (folder != name && folder.rfind(name + "-", 0) != 0) continue;
    const std::string newest = newest_checkpoint(default_checkpoint_folder(run.path().string()));
    if (newest.empty()) continue;
    const auto time = fs::last_write_time(newest, ec);
    if (best.empty() || time > best_time) {
      best = newest;
      best_time = time;
    }
  }
  if (best.empty()) throw UsageError("--resume auto: no checkpoint under runs/" + name + "-*/checkpoints/");
  return best;
}

// The run folder a checkpoint belongs to: the folder above its checkpoints/.
std::string run_folder_of(const std::string& checkpoint) {
  const fs::path folder = fs::absolute(checkpoint).parent_path();
  return folder.filename() == "checkpoints" ? folder.parent_path().string() : folder.string();
}

int command_run(const Args& args, Registry& registry, PackLoader& loader) {
  Description description = load(args, registry, loader);
  RunOptions options;
  std::string fresh_because;  // --resume auto --run-dir DIR found nothing in DIR
  if (args.resume == "auto" && !args.run_dir.empty()) {
    // The run folder was named: its own checkpoints only, never another run's.
    const std::string folder = default_checkpoint_folder(args.run_dir);
    options.resume_from = newest_checkpoint(folder);
    if (options.resume_from.empty()) fresh_because = "--resume auto: no checkpoint in " + folder + "/: starting a fresh run";
  } else if (args.resume == "auto") {
    options.resume_from = find_auto_checkpoint(description.name);
  } else {
    options.resume_from = args.resume;
  }
  if (!options.resume_from.empty()) {
    try {
      options.start_positions = read_checkpoint_positions(options.resume_from);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--resume: ") + e.what());
    }
  }
  options.run_folder = !args.run_dir.empty()        ? args.run_dir
                       : !options.resume_from.empty() ? run_folder_of(options.resume_from)
                                                      : "runs/" + description.name + "-" + timestamp();
  fs::create_directories(options.run_folder);
  add_log_file((fs::path(options.run_folder) / "flowrun.log").string());
  log::info("pipeline '", description.name, "': ", description.nodes.size(), " nodes, ", description.edges.size(),
            " edges, device ", description.device, ", seed ", description.seed);
  if (!options.resume_from.empty()) log::info("resuming from ", options.resume_from);
  if (!fresh_because.empty()) log::info(fresh_because);
  AtomicFile resolved((fs::path(options.run_folder) / "pipeline.json").string());
  resolved.write(description.resolved_json + "\n");
  resolved.commit();
  log::info("run folder ", options.run_folder);
  Pipeline pipeline(std::move(description), options);
  SignalWatcher watcher(
      [&](int sig) {
        log::warn(sig == SIGINT ? "SIGINT" : "SIGTERM",
                  " received: stopping (in-flight work is dropped; send again to abort at once)");
        pipeline.request_stop();
      },
      [&](int) {
        log::warn("second signal: aborting now");
        pipeline.cancel();
      });
  const RunReport report = pipeline.run();
  log::clear_status();
  print_report(report);
  if (!report.ended_by.empty()) log::info("the run was ended early by ", report.ended_by, ": ", report.ended_why);
  if (watcher.received() == SIGINT) return 130;
  if (watcher.received() == SIGTERM) return 143;
  return kExitOk;
}

int dispatch(const Args& args) {
  Registry registry;
  register_builtin_stages(registry);
  PackLoader loader;
  if (args.command == "plugins") return command_plugins(args, registry, loader);
  if (args.command == "validate") {
    const Description d = load(args, registry, loader);
    std::cout << d.source << ": ok (" << d.nodes.size() << " nodes, " << d.edges.size() << " edges)\n";
    return kExitOk;
  }
  if (args.command == "export") {
    if (args.positional.size() != 2) throw UsageError("export takes CHECKPOINT.h5 OUT_FOLDER");
    const ExportSummary summary = export_checkpoint(args.positional[0], args.positional[1], args.ema);
    std::cout << "exported " << (summary.ema ? "the EMA weights" : "the weights") << " of " << args.positional[0]
              << " (step " << summary.step << ", " << summary.model << ") to " << args.positional[1]
              << "/model.safetensors and config.json\n";
    return kExitOk;
  }
  if (args.command == "graph") {
    std::cout << render_graphviz(load(args, registry, loader));
    return kExitOk;
  }
  return command_run(args, registry, loader);
}

int main_impl(int argc, char** argv) {
  SignalWatcher::block_signals();
  keep_freed_memory();
  Args args;
  try {
    args = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "flowrun: " << e.what() << " (flowrun --help)\n";
    return kExitUsage;
  }
  if (args.version) {
    std::cout << "flowrun " << FLOWRUN_VERSION << "\n";
    return kExitOk;
  }
  if (args.help) {
    const bool explicit_command = argc > 1 && kCommandHelp.count(argv[1]);
    std::cout << (explicit_command ? kCommandHelp.at(args.command) : kMainHelp);
    return kExitOk;
  }
  if (args.positional.empty() && args.command != "plugins") {
    std::cerr << kMainHelp;
    return kExitUsage;
  }
  if (!configure_logging(args.log_level)) {
    std::cerr << "flowrun: --log-level must be one of " << log_levels_help() << ", got '" << args.log_level << "'\n";
    return kExitUsage;
  }
  try {
    return dispatch(args);
  } catch (const UsageError& e) {
    std::cerr << "flowrun: " << e.what() << " (flowrun --help)\n";
    return kExitUsage;
  } catch (const DescriptionError& e) {
    std::cerr << e.what() << "\n";
    return kExitUsage;
  } catch (const NodeError& e) {
    log::error(e.what());
    return kExitFailed;
  } catch (const std::exception& e) {
    log::error(e.what());
    return kExitFailed;
  }
}

}  // namespace
}  // namespace flowrun

int main(int argc, char** argv) { return flowrun::main_impl(argc, argv); }
