// Batching stages.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo batch_plugin();

}  // namespace flowrun
