// Text renderings of the registry and of a description: `flowrun plugins`,
// `flowrun plugins NAME`, the generated docs/plugins.md and `flowrun graph` (DOT).
// All come from the plugins' own declarations, so they cannot drift from the code.
#pragma once

#include <string>

#include "flowrun/description.hpp"
#include "flowrun/registry.hpp"

namespace flowrun {

std::string render_plugin_list(const Registry& registry);
std::string render_plugin_details(const PluginInfo& plugin);  // like gst-inspect
std::string render_plugin_reference_markdown(const Registry& registry);
std::string render_graphviz(const Description& description);

}  // namespace flowrun
