#include "stages/builtin.hpp"

#include "flowrun/registry.hpp"
#include "stages/augment/augment_plugins.hpp"
#include "stages/batch/batch_plugins.hpp"
#include "stages/batch_augment/batch_augment_plugins.hpp"
#include "stages/checkpoint/checkpoint_plugins.hpp"
#include "stages/checkpoint/saved_model_source.hpp"
#include "stages/core/core_stages.hpp"
#include "stages/decode/decode_plugins.hpp"
#include "stages/evaluate/evaluate_plugins.hpp"
#include "stages/monitor/monitor_plugins.hpp"
#include "stages/predict/predict_plugins.hpp"
#include "stages/sources/source_plugins.hpp"
#include "stages/train/train_plugins.hpp"

namespace flowrun {

void register_builtin_stages(Registry& registry) {
  registry.add(counter_source_plugin());
  registry.add(identity_plugin());
  registry.add(collect_plugin());
  registry.add(discard_plugin());

  registry.add(tar_source_plugin());
  registry.add(image_folder_source_plugin());
  registry.add(cifar10_source_plugin());
  registry.add(image_files_source_plugin());
  registry.add(jpeg_decode_plugin());
  registry.add(resize_plugin());
  registry.add(random_resized_crop_plugin());
  registry.add(random_crop_plugin());
  registry.add(center_crop_plugin());
  registry.add(horizontal_flip_plugin());
  registry.add(color_jitter_plugin());
  registry.add(randaugment_plugin());
  registry.add(normalize_plugin());
  registry.add(random_erasing_plugin());
  registry.add(batch_plugin());
  registry.add(to_device_plugin());
  registry.add(batch_flip_plugin());
  registry.add(batch_normalize_plugin());
  registry.add(batch_resize_plugin());
  registry.add(batch_random_resized_crop_plugin());
  registry.add(batch_random_erasing_plugin());
  registry.add(mixup_plugin());
  registry.add(cutmix_plugin());
  registry.add(mixup_cutmix_plugin());
  registry.add(train_plugin());
  registry.add(evaluate_plugin());
  registry.add(tensorboard_plugin());
  registry.add(checkpoint_plugin());
  registry.add(report_plugin());
  registry.add(saved_model_plugin());
  registry.add(predict_plugin());
}

}  // namespace flowrun
