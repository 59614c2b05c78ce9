#include "stages/messages/sample_records.hpp"

#include <algorithm>
#include <string>

namespace flowrun {

Thumbnail thumbnail_of(const torch::Tensor& chw) {
  torch::Tensor x = chw.detach().to(torch::kCPU, torch::kFloat);
  if (chw.scalar_type() != torch::kByte) {
    const float lo = x.min().item<float>(), hi = x.max().item<float>();
    x = (x - lo) * (255.0f / std::max(hi - lo, 1e-6f));
  }
  const int64_t side = std::max(x.size(1), x.size(2));
  const int64_t stride = (side + Thumbnail::kThumbnailSide - 1) / Thumbnail::kThumbnailSide;
  x = x.slice(1, 0, x.size(1), stride).slice(2, 0, x.size(2), stride);
  if (x.size(0) == 1) x = x.expand({3, x.size(1), x.size(2)});
  const torch::Tensor hwc = x.slice(0, 0, 3).round().clamp(0, 255).to(torch::kByte).permute({1, 2, 0}).contiguous();
  Thumbnail t;
  t.height = static_cast<int>(hwc.size(0));
  t.width = static_cast<int>(hwc.size(1));
  t.rgb.assign(hwc.data_ptr<std::uint8_t>(), hwc.data_ptr<std::uint8_t>() + hwc.numel());
  return t;
}

Misclassified sample_record(const Batch& batch, std::size_t i, std::int64_t label, std::int64_t predicted,
                            double confidence, double loss) {
  Misclassified m;
  m.key = i < batch.keys.size() ? batch.keys[i] : "#" + std::to_string(i);
  m.label = label;
  m.predicted = predicted;
  m.confidence = confidence;
  m.loss = loss;
  // Reading the device's images would wait for the step that uses them.
  m.thumbnail = thumbnail_of(batch.host_side_images()[static_cast<std::int64_t>(i)]);
  return m;
}

}  // namespace flowrun
