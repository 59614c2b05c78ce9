// Decoding stages.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo jpeg_decode_plugin();

}  // namespace flowrun
