// What the sub-commands share: the registry they resolve plugins in, the usage error
// (exit 2), loading a description as every command does, and the exit codes.
// Each sub-command lives in its own file (cmd_*.cpp) and registers itself on the
// CLI11 app with its options, help text and the action to run after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "flowrun/description.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"

namespace flowrun::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Context {
  Registry registry;
  PackLoader loader;
  std::function<int()> action;  // set by the sub-command that was chosen
  std::string log_level;  // "" = not given: info (data-parallel ranks other than 0: warn)
  bool data_on_stdout = false;  // the command writes data to standard output: logs go to stderr
  std::string log_level_or_default() const { return log_level.empty() ? "info" : log_level; }
};

// --set PATH=VALUE (repeatable) and --log-level LEVEL on a sub-command.
void add_overrides(CLI::App& command, std::vector<std::string>& overrides);
void add_log_level(CLI::App& command, Context& context);

// Packs from FLOWRUN_PLUGIN_PATH, then the description with its overrides, validated,
// with its device resolved (LibTorch's answer to "auto").
Description load_pipeline(Context& context, const std::string& path, const std::vector<std::string>& overrides);
// The same for a description a command built (evaluate, predict): `label` names it in messages.
Description load_built_pipeline(Context& context, nlohmann::json document, const std::string& label,
                                const std::vector<std::string>& overrides);
void load_search_path_packs(Context& context);

// "20261206-161502": run folders are named NAME-<this> (local time).
std::string run_timestamp();

void add_run_command(CLI::App& app, Context& context);
void add_validate_command(CLI::App& app, Context& context);
void add_graph_command(CLI::App& app, Context& context);
void add_plugins_command(CLI::App& app, Context& context);
void add_export_command(CLI::App& app, Context& context);
void add_ablate_command(CLI::App& app, Context& context);
void add_bench_command(CLI::App& app, Context& context);
void add_launch_command(CLI::App& app, Context& context);
void add_evaluate_command(CLI::App& app, Context& context);
void add_predict_command(CLI::App& app, Context& context);

// This flowrun executable's path (for the commands that start flowrun processes).
std::string self_executable();

}  // namespace flowrun::cli
