// Batch augmentation stages: per-batch tensor ops on the train device (CPU or CUDA),
// and the hand-off to that device.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo batch_flip_plugin();
PluginInfo batch_normalize_plugin();
PluginInfo batch_resize_plugin();
PluginInfo batch_random_resized_crop_plugin();
PluginInfo batch_random_erasing_plugin();
PluginInfo mixup_plugin();
PluginInfo cutmix_plugin();
PluginInfo mixup_cutmix_plugin();
PluginInfo to_device_plugin();

}  // namespace flowrun
