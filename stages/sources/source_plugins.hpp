// Dataset sources (one per storage format).
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo tar_source_plugin();
PluginInfo image_folder_source_plugin();
PluginInfo cifar10_source_plugin();
PluginInfo image_files_source_plugin();

}  // namespace flowrun
