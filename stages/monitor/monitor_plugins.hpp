// Stages that watch a run: TensorBoard event files; the run report and its JSON files.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo tensorboard_plugin();
PluginInfo report_plugin();

}  // namespace flowrun
