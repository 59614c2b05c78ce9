// The parameters of the augmentations that have a per-sample CPU stage and a batch
// twin (stages/batch_augment/): declared once here, so that both plugins take the
// same names, defaults and ranges and swapping one for the other is a one-line change.
#pragma once

#include "flowrun/schema.hpp"

namespace flowrun {

void declare_flip_params(Schema& s);                 // p
void declare_normalize_params(Schema& s);            // mean, std (default: ImageNet)
void declare_resize_params(Schema& s);               // size ([s]: shorter side; [h, w]), interpolation
void declare_random_resized_crop_params(Schema& s);  // size, scale, ratio, interpolation
void declare_random_erasing_params(Schema& s);       // p, scale, ratio, value, random_value

}  // namespace flowrun
