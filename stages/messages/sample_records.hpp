// Records of single samples of a batch for reports: the misclassified ones and the
// suspected label errors, each with a small thumbnail of the image the model saw.
#pragma once

#include <cstddef>
#include <cstdint>

#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"

namespace flowrun {

// A small RGB picture of one image (C, H, W): uint8 as it is, normalized floats
// stretched to 0-255 per image; every k-th pixel, so that the longer side is at most
// Thumbnail::kThumbnailSide.
Thumbnail thumbnail_of(const torch::Tensor& chw);

// Sample i of `batch` as a record: its key, label, the predicted class and how sure
// and how wrong the model was, and its thumbnail.
Misclassified sample_record(const Batch& batch, std::size_t i, std::int64_t label, std::int64_t predicted,
                            double confidence, double loss);

}  // namespace flowrun
