// flowrun plugins: the registered plugins, one plugin's ports and parameters, or the
// Markdown reference (docs/plugins.md is generated this way).
#include <iostream>

#include "cli.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/render.hpp"

namespace flowrun::cli {

void add_plugins_command(CLI::App& app, Context& context) {
  struct Options {
    std::string name;
    bool markdown = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("plugins", "list the plugins, or print one plugin's ports and parameters");
  command->footer(
      "Without NAME, lists every registered plugin (built-in and from FLOWRUN_PLUGIN_PATH packs)\n"
      "with its role and one-line summary. With NAME, prints its description, ports (kinds) and\n"
      "full parameter table: type, default, range or choices, doc. --markdown prints the reference\n"
      "of all built-in plugins as Markdown (docs/plugins.md is generated this way).");
  command->add_option("NAME", options->name, "a plugin's name");
  command->add_flag("--markdown", options->markdown, "the reference of every plugin, as Markdown");
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.action = [&context, options] {
      load_search_path_packs(context);
      if (options->markdown) {
        std::cout << render_plugin_reference_markdown(context.registry);
        return kExitOk;
      }
      if (options->name.empty()) {
        std::cout << context.registry.size() << " plugins (flowrun plugins NAME for details):\n"
                  << render_plugin_list(context.registry);
        return kExitOk;
      }
      const PluginInfo* plugin = context.registry.find(options->name);
      if (!plugin) {
        std::cerr << "flowrun: unknown plugin '" << options->name << "'" << did_you_mean(options->name, context.registry.names())
                  << "; `flowrun plugins` lists them\n";
        return kExitUsage;
      }
      std::cout << render_plugin_details(*plugin);
      return kExitOk;
    };
  });
}

}  // namespace flowrun::cli
