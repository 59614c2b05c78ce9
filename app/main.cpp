// The flowrun command line (CLI11): one sub-command per file (cmd_*.cpp), each with its
// own help; `flowrun PIPELINE.json ...` is `flowrun run PIPELINE.json ...`. Unknown
// commands and options are refused with exit 2 and a did-you-mean. Exit codes:
//   0 success · 1 a stage failed · 2 bad description or usage · 130 SIGINT · 143 SIGTERM
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "device.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/memory.hpp"
#include "flowrun/version.hpp"
#include "signals.hpp"
#include "stages/builtin.hpp"

namespace flowrun::cli {
namespace {

const char* const kUsage = R"(In short:
  flowrun PIPELINE.json [--set PATH=VALUE]... [--resume CHECKPOINT|auto] [--run-dir DIR]
                        [--profile TRACE.json] [--log-level LEVEL]
  flowrun run PIPELINE.json [options]        same as above
  flowrun export CHECKPOINT.h5 OUT_FOLDER [--ema]
  flowrun predict MODEL INPUT... [--top-k K] [--output FILE] [--batch-size B] [--device D]
  flowrun evaluate MODEL [--data PATH [--split S]] [--run-dir DIR] [--ema]
  flowrun validate PIPELINE.json [--set PATH=VALUE]...
  flowrun graph PIPELINE.json [--set PATH=VALUE]...
  flowrun ablate ABLATION.json [--out DIR] [--set PATH=VALUE]... [--rows AXIS --cols AXIS] [--dry-run | --report-only]
  flowrun bench PIPELINE.json [--batches N] [--model] [--profile TRACE.json]
  flowrun launch --nproc N PIPELINE.json [run options]   data-parallel on this machine
  flowrun plugins [NAME] [--markdown]
  flowrun --version | --help | COMMAND --help
)";

const char* const kFooter = R"(Examples:
  flowrun pipelines/quickstart.json --set nodes.mix.plugin=mixup_cutmix
  flowrun pipelines/quickstart.json --resume auto
  flowrun predict RUN/checkpoints/best.h5 photos/ --top-k 3
  flowrun evaluate RUN/checkpoints/best.h5 --data data.tar --split test
  flowrun validate p.json --set seed=3
  flowrun ablate pipelines/ablations/quickstart_augment.json
  flowrun bench pipelines/quickstart.json --model
  flowrun pipelines/quickstart.json --profile trace.json
  flowrun launch --nproc 2 pipelines/quickstart.json
  torchrun --nproc-per-node 2 build/flowrun pipelines/quickstart.json
Environment:
  FLOWRUN_PLUGIN_PATH   colon-separated folders of plugin packs (*.so), all loaded at start
  RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun; or SLURM_PROCID, SLURM_NTASKS...)
                        this process is one rank of a data-parallel job (docs/distributed.md)
Exit codes:
  0 finished · 1 a stage failed · 2 invalid description or usage · 130 interrupted (SIGINT)
  143 terminated (SIGTERM))";

std::vector<std::string> long_options(const CLI::App& command) {
  std::vector<std::string> names = {"--help"};
  for (const CLI::Option* o : command.get_options())
    for (const std::string& name : o->get_lnames()) names.push_back("--" + name);
  return names;
}

// `flowrun PIPELINE.json ...` and `flowrun --set ... PIPELINE.json` mean `flowrun run ...`;
// a first word that is neither a command nor a description file is an unknown command,
// and an option the command does not have is refused before anything else is checked.
std::vector<std::string> with_default_command(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return args;
  const std::string& first = args.front();
  if (first == "--help" || first == "-h" || first == "--version") return args;
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) commands.push_back(sub->get_name());
  if (std::find(commands.begin(), commands.end(), first) == commands.end()) {
    const bool looks_like_file = (first.size() > 5 && first.compare(first.size() - 5, 5, ".json") == 0) ||
                                 std::filesystem::is_regular_file(first);
    if (first[0] != '-' && !looks_like_file)
      throw UsageError("unknown command '" + first + "'" + did_you_mean(first, commands) +
                       "; commands: run, validate, graph, plugins, export, predict, evaluate, ablate, bench, launch");
    args.insert(args.begin(), "run");
  }
  const std::vector<std::string> known = long_options(*app.get_subcommand(args.front()));
  if (args.front() == "launch") {
    // Its own options come before PIPELINE.json (each takes a value); the rest is `run`'s.
    for (std::size_t i = 1; i < args.size() && args[i].rfind("-", 0) == 0; i += args[i].find('=') == std::string::npos ? 2 : 1) {
      const std::string name = args[i].substr(0, args[i].find('='));
      if (name == "--help" || name == "-h") break;
      if (std::find(known.begin(), known.end(), name) == known.end())
        throw UsageError("unknown option '" + name + "' for launch" + did_you_mean(name, known));
    }
    return args;
  }
  for (const std::string& a : args) {
    if (a.rfind("--", 0) != 0) continue;
    const std::string name = a.substr(0, a.find('='));
    if (std::find(known.begin(), known.end(), name) == known.end())
      throw UsageError("unknown option '" + name + "' for " + args.front() + did_you_mean(name, known));
  }
  return args;
}

// CLI11's own message, or the extra arguments by name.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  if (!dynamic_cast<const CLI::ExtrasError*>(&e)) return e.what();
  const CLI::App* command = &app;
  for (const CLI::App* sub : app.get_subcommands()) command = sub;
  return "unexpected argument(s): " + CLI::detail::join(command->remaining(), " ");
}

int main_impl(int argc, char** argv) {
  SignalWatcher::block_signals();
  keep_freed_memory();
  Context context;
  register_builtin_stages(context.registry);
  CLI::App app(std::string("flowrun - run a training pipeline described in a JSON file\n\n") + kUsage, "flowrun");
  app.footer(kFooter);
  app.require_subcommand(0, 1);
  bool version = false;
  app.add_flag("--version", version, "print the version, the LibTorch it runs on and the CUDA devices it can use");
  add_run_command(app, context);
  add_validate_command(app, context);
  add_graph_command(app, context);
  add_plugins_command(app, context);
  add_export_command(app, context);
  add_ablate_command(app, context);
  add_bench_command(app, context);
  add_launch_command(app, context);
  add_evaluate_command(app, context);
  add_predict_command(app, context);
  std::vector<std::string> args;
  try {
    args = with_default_command(app, argc, argv);
    if (args.empty()) {
      std::cerr << app.help();
      return kExitUsage;
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();  // the chosen sub-command's, when there is one
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << "flowrun: " << usage_message(app, e) << " (flowrun --help)\n";
    return kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "flowrun: " << e.what() << " (flowrun --help)\n";
    return kExitUsage;
  }
  if (version) {
    std::cout << "flowrun " << FLOWRUN_VERSION << "\n" << runtime_summary() << "\n";
    return kExitOk;
  }
  if (!context.action) {
    std::cerr << app.help();
    return kExitUsage;
  }
  if (!configure_logging(context.log_level_or_default(),
                         context.data_on_stdout ? LogOutput::StderrOnly : LogOutput::StdoutAndStderr)) {
    std::cerr << "flowrun: --log-level must be one of " << log_levels_help() << ", got '" << context.log_level << "'\n";
    return kExitUsage;
  }
  try {
    return context.action();
  } catch (const UsageError& e) {
    std::cerr << "flowrun: " << e.what() << " (flowrun --help)\n";
    return kExitUsage;
  } catch (const DescriptionError& e) {
    std::cerr << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    log::error(e.what());
    return kExitFailed;
  }
}

}  // namespace
}  // namespace flowrun::cli

int main(int argc, char** argv) { return flowrun::cli::main_impl(argc, argv); }
