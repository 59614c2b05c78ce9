// Mixup and CutMix arithmetic on whole batches: a port of timm 1.0.31's
// timm/data/mixup.py (Mixup, mixup_target, rand_bbox, rand_bbox_minmax,
// cutmix_bbox_and_lam). The random draws are made by the stage (mix_stage.cpp) and
// passed in, so the golden test (tests/augment/test_mix.cpp) injects the draws timm
// made and compares arithmetic, not two random generators.
//
// Shapes: images (N, C, H, W) uint8 or float, on any device; labels (N) int64;
// targets (N, K) float32 on the images' device.
//
// As timm: sample i's partner is sample N - 1 - i (the batch reversed; torchvision's
// v2 MixUp/CutMix roll by one instead), and the soft target of every batch that
// passes is built, mixed or not, so downstream sees one kind of batch.
// Where this differs: uint8 batches are mixed in float32 and rounded half to even
// (what timm's FastCollateMixup does on uint8); odd batches are accepted (timm
// asserts an even size): the middle sample is its own partner.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace flowrun {

enum class MixMode { Batch, Pair, Elem };  // one draw per batch, per pair (i, N-1-i), per sample

// Rows [top, bottom) and columns [left, right) take the partner's pixels.
struct CutBox {
  std::int64_t top = 0, bottom = 0, left = 0, right = 0;
  std::int64_t area() const { return (bottom - top) * (right - left); }
  bool operator==(const CutBox& o) const {
    return top == o.top && bottom == o.bottom && left == o.left && right == o.right;
  }
};

// timm's rand_bbox once the centre (cy in [0, H), cx in [0, W)) is drawn: a cut of
// int(H * sqrt(1 - lam)) by int(W * sqrt(1 - lam)), from centre - cut // 2 to
// centre + (cut + 1) // 2, clipped to the image. `float32_lam`: the lam is a float32
// (timm's per-sample modes keep lam in a float32 array, and NumPy then computes the
// square root and the products in float32, which can change int() at a boundary).
CutBox centred_box(std::int64_t height, std::int64_t width, double lam, std::int64_t cy, std::int64_t cx,
                   bool float32_lam);
// The range timm's rand_bbox_minmax draws a cut side from: [int(size * lo), int(size * hi)).
struct IntRange {
  std::int64_t lo = 0, hi = 0;
};
IntRange minmax_cut_range(std::int64_t size, double ratio_lo, double ratio_hi);
// timm's rand_bbox_minmax once the cut size and the corner (top in [0, H - cut_h],
// left in [0, W - cut_w]) are drawn.
CutBox corner_box(std::int64_t cut_h, std::int64_t cut_w, std::int64_t top, std::int64_t left);
// cutmix_bbox_and_lam's correction: the share of the image the box leaves alone.
double box_lam(const CutBox& box, std::int64_t height, std::int64_t width);

// What happens to one sample (or, in batch mode, to all): lam is final (after any
// correction); lam == 1 leaves the sample as it is.
struct SampleMix {
  double lam = 1.0;
  bool cutmix = false;
  CutBox box;
};

struct MixedBatch {
  at::Tensor images;   // same shape, dtype and device as the input
  at::Tensor targets;  // (N, K) float32
};

// `mixes` holds one entry (the whole batch, timm's mode 'batch') or one per sample
// (modes 'pair' and 'elem'; pair mode repeats a pair's entry for both of its samples).
// The targets are timm's mixup_target: one-hot with off = s / K and on = 1 - s + off,
// mixed with the reversed batch's as lam * y + (1 - lam) * y.flip(0).
MixedBatch apply_mix(const at::Tensor& images, const at::Tensor& labels, const std::vector<SampleMix>& mixes,
                     std::int64_t num_classes, double label_smoothing);

}  // namespace flowrun
