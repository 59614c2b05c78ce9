// flowrun graph: the validated pipeline as Graphviz DOT.
#include <iostream>

#include "cli.hpp"
#include "flowrun/render.hpp"

namespace flowrun::cli {

void add_graph_command(CLI::App& app, Context& context) {
  struct Options {
    std::string pipeline;
    std::vector<std::string> overrides;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("graph", "print the pipeline as Graphviz DOT (flowrun graph p.json | dot -Tsvg > p.svg)");
  command->footer(
      "Prints the validated pipeline as Graphviz DOT: node labels are \"id / plugin\", edge labels\n"
      "the kind of data on the edge. Render with: flowrun graph p.json | dot -Tsvg > p.svg");
  command->add_option("PIPELINE", options->pipeline, "the description (.json)")->required();
  add_overrides(*command, options->overrides);
  add_log_level(*command, context);
  command->callback([&context, options] {
    context.action = [&context, options] {
      std::cout << render_graphviz(load_pipeline(context, options->pipeline, options->overrides));
      return kExitOk;
    };
  });
}

}  // namespace flowrun::cli
