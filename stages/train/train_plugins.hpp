// The train step as a pipeline stage.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo train_plugin();

}  // namespace flowrun
