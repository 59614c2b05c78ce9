// Stages that watch a run: TensorBoard event files (run reports and checkpoints to come).
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo tensorboard_plugin();

}  // namespace flowrun
