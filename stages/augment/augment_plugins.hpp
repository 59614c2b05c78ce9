// CPU augmentation stages (per sample).
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo resize_plugin();
PluginInfo random_resized_crop_plugin();
PluginInfo random_crop_plugin();
PluginInfo center_crop_plugin();
PluginInfo horizontal_flip_plugin();
PluginInfo normalize_plugin();
PluginInfo random_erasing_plugin();
PluginInfo color_jitter_plugin();
PluginInfo randaugment_plugin();

}  // namespace flowrun
