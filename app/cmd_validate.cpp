// flowrun validate: check a description without running anything.
#include <iostream>

#include "cli.hpp"

namespace flowrun::cli {

void add_validate_command(CLI::App& app, Context& context) {
  struct Options {
    std::string pipeline;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("validate", "only check the description: every problem, with its JSON location");
  command->footer(
      "Checks the description against the registered plugins without running anything: JSON syntax\n"
      "(line and column), keys, plugin names, parameter names, types and ranges, node ids, edges,\n"
      "port kinds, cycles and unconnected inputs. Prints every problem with its JSON pointer,\n"
      "e.g. \"p.json:/nodes/3/params/scale: expected number in [0, 1], got 1.5\". Exit 0 or 2.");
  command->add_option("PIPELINE", options->pipeline, "the description (.json)")->required();
  add_overrides(*command, options->overrides);
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.action = [&context, options] {
      const Description d = load_pipeline(context, options->pipeline, options->overrides);
      std::cout << d.source << ": ok (" << d.nodes.size() << " nodes, " << d.edges.size() << " edges)\n";
      return kExitOk;
    };
  });
}

}  // namespace flowrun::cli
