// mixup, cutmix and mixup_cutmix: timm's Mixup (timm 1.0.31, timm/data/mixup.py) as
// a batch stage. Each batch's draws come from the stream keyed on the run's seed,
// the node and the batch's (epoch, step), so they do not depend on threads and a
// resumed run mixes exactly as the uninterrupted one. The arithmetic is in
// mix_ops.cpp; every batch leaves with (N, K) soft targets, mixed or not.
//
//   {"id": "mix", "plugin": "mixup_cutmix", "params": {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "label_smoothing": 0.1}}
#include <ATen/ATen.h>

#include <stdexcept>

#include "flowrun/options.hpp"
#include "stages/batch_augment/batch_augment_plugins.hpp"
#include "stages/batch_augment/batch_transform.hpp"
#include "stages/batch_augment/mix_ops.hpp"
#include "stages/common/batch_checks.hpp"

namespace flowrun {
namespace {

enum class Which { Mixup, Cutmix, Both };

constexpr double kDefaultMixupAlpha = 0.8;   // DeiT's and timm's usual recipe
constexpr double kDefaultCutmixAlpha = 1.0;
constexpr double kDefaultSmoothing = 0.1;

// The three plugins' parameters: what they share here, each plugin's own below.
struct MixOptions {
  double mixup_alpha = 0, cutmix_alpha = 0, switch_prob = 0.5;
  double prob = 1.0;
  MixMode mode = MixMode::Batch;
  double label_smoothing = kDefaultSmoothing;
  std::int64_t num_classes = 0;
  std::vector<double> cutmix_minmax;
  bool correct_lam = true;

  template <typename D>
  static void declare_common(D& d) {
    d(&MixOptions::prob, "prob", "probability of mixing a batch (mode batch) or a sample (pair, elem)").range(0, 1);
    d(&MixOptions::mode, "mode", "one draw per batch, per pair (i, N-1-i), or per sample",
      Choices<MixMode>{{"batch", MixMode::Batch}, {"pair", MixMode::Pair}, {"elem", MixMode::Elem}});
    d(&MixOptions::label_smoothing, "label_smoothing", "smoothing of the soft targets (timm's mixup_target)").range(0, 1);
    d(&MixOptions::num_classes, "num_classes", "classes of the soft targets; 0 = from the data").range(0, 1 << 24);
  }
  template <typename D>
  static void declare_cutmix(D& d) {
    d(&MixOptions::cutmix_minmax, "cutmix_minmax",
      "[low, high] box side as a share of the image side, instead of alpha's box (timm's rand_bbox_minmax); [] = off")
        .max_length(2)
        .range(0, 1)
        .ascending();
    d(&MixOptions::correct_lam, "correct_lam", "lam = the share of pixels the box leaves (the box is clipped at the border)");
  }
};

struct MixupOptions : MixOptions {
  MixupOptions() { mixup_alpha = kDefaultMixupAlpha; }
  template <typename D>
  static void declare(D& d) {
    d(&MixOptions::mixup_alpha, "alpha", "Beta(alpha, alpha) of the blend weight lam; > 0").range(1e-6, 100);
    declare_common(d);
  }
};

struct CutmixOptions : MixOptions {
  CutmixOptions() { cutmix_alpha = kDefaultCutmixAlpha; }
  template <typename D>
  static void declare(D& d) {
    d(&MixOptions::cutmix_alpha, "alpha", "Beta(alpha, alpha) of lam, the area share kept; > 0").range(1e-6, 100);
    declare_common(d);
    declare_cutmix(d);
  }
};

struct MixupCutmixOptions : MixOptions {
  MixupCutmixOptions() {
    mixup_alpha = kDefaultMixupAlpha;
    cutmix_alpha = kDefaultCutmixAlpha;
  }
  template <typename D>
  static void declare(D& d) {
    d(&MixOptions::mixup_alpha, "mixup_alpha", "Mixup's Beta(alpha, alpha); 0 = no Mixup").range(0, 100);
    d(&MixOptions::cutmix_alpha, "cutmix_alpha", "CutMix's Beta(alpha, alpha); 0 = no CutMix").range(0, 100);
    d(&MixOptions::switch_prob, "switch_prob", "with both on: probability of CutMix rather than Mixup").range(0, 1);
    declare_common(d);
    declare_cutmix(d);
  }
};

class MixStage : public BatchTransform {
 public:
  // check_mix_node has refused a half-given cutmix_minmax and nothing to mix, before the run.
  MixStage(const StageArgs& args, Which which, const MixOptions& o)
      : BatchTransform(args),
        mode_(o.mode),
        prob_(o.prob),
        smoothing_(o.label_smoothing),
        num_classes_(o.num_classes),
        mixup_alpha_(o.mixup_alpha),
        cutmix_alpha_(o.cutmix_alpha),
        switch_prob_(which == Which::Both ? o.switch_prob : 0.0) {
    if (which != Which::Mixup) {
      correct_lam_ = o.correct_lam;
      minmax_ = o.cutmix_minmax;
      if (!minmax_.empty()) cutmix_alpha_ = 1.0;  // as timm: with min/max boxes the alpha only decides whether to cut
    }
  }

 protected:
  std::shared_ptr<const Payload> transform(const Batch& batch, const std::shared_ptr<const Payload>&) override {
    if (batch.targets.defined())
      throw std::runtime_error("batch " + std::to_string(batch.step) +
                               " already has soft targets: another mix stage upstream? Use one mixup_cutmix stage");
    const std::int64_t classes = classes_of(batch);
    const std::int64_t n = batch.images.size(0);
    height_ = batch.images.size(2);
    width_ = batch.images.size(3);
    Rng rng = item_rng(batch.epoch, batch.step);
    std::vector<SampleMix> mixes;
    if (mode_ == MixMode::Batch) {
      mixes.push_back(draw_batch(rng));
    } else {
      mixes.resize(static_cast<std::size_t>(n));
      const std::int64_t draws = mode_ == MixMode::Pair ? n / 2 : n;
      for (std::int64_t i = 0; i < draws; ++i) {
        mixes[static_cast<std::size_t>(i)] = draw_sample(rng);
        if (mode_ == MixMode::Pair) mixes[static_cast<std::size_t>(n - 1 - i)] = mixes[static_cast<std::size_t>(i)];
      }
    }
    MixedBatch mixed = apply_mix(batch.images, batch.labels, mixes, classes, smoothing_);
    auto out = with_images(batch, std::move(mixed.images));
    out->targets = std::move(mixed.targets);
    return out;
  }

 private:
  std::int64_t classes_of(const Batch& batch) const {
    if (num_classes_ > 0) return num_classes_;
    if (batch.dataset && !batch.dataset->classes.empty()) return static_cast<std::int64_t>(batch.dataset->classes.size());
    throw std::runtime_error("num_classes is 0 (from the data) but the batches do not say how many classes there are; set num_classes");
  }

  // timm's _params_per_batch: mix with probability prob; with both kinds on, CutMix
  // with probability switch_prob; lam ~ Beta(alpha, alpha) of the kind chosen.
  SampleMix draw_batch(Rng& rng) {
    if (!(rng.uniform() < prob_)) return {};
    const bool cut = choose_cutmix(rng);
    const double alpha = cut ? cutmix_alpha_ : mixup_alpha_;
    return finish(cut, rng.beta(alpha, alpha), rng, /*float32_lam=*/false);
  }

  // timm's _params_per_elem for one sample (or pair): the same choices, lam in float32.
  SampleMix draw_sample(Rng& rng) {
    const bool cut = choose_cutmix(rng);
    const double alpha = cut ? cutmix_alpha_ : mixup_alpha_;
    const float lam = static_cast<float>(rng.beta(alpha, alpha));
    if (!(rng.uniform() < prob_) || lam == 1.0f) return {};
    return finish(cut, lam, rng, /*float32_lam=*/true);
  }

  bool choose_cutmix(Rng& rng) const {
    if (mixup_alpha_ > 0 && cutmix_alpha_ > 0) return rng.uniform() < switch_prob_;
    return cutmix_alpha_ > 0;
  }

  // cutmix_bbox_and_lam: the box (centred on a uniform point, or min/max sized at a
  // uniform corner) and the lam it leaves.
  SampleMix finish(bool cut, double lam, Rng& rng, bool float32_lam) const {
    SampleMix m;
    m.lam = lam;
    m.cutmix = cut;
    if (!cut) return m;
    if (minmax_.empty()) {
      const auto cy = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(height_)));
      const auto cx = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(width_)));
      m.box = centred_box(height_, width_, lam, cy, cx, float32_lam);
    } else {
      const IntRange rh = minmax_cut_range(height_, minmax_[0], minmax_[1]);
      const IntRange rw = minmax_cut_range(width_, minmax_[0], minmax_[1]);
      if (rh.hi <= rh.lo || rw.hi <= rw.lo)
        throw std::runtime_error("cutmix_minmax [" + std::to_string(minmax_[0]) + ", " + std::to_string(minmax_[1]) +
                                 "] leaves no box size for " + std::to_string(height_) + "x" + std::to_string(width_) +
                                 " images; widen it");
      const auto cut_h = rh.lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(rh.hi - rh.lo)));
      const auto cut_w = rw.lo + static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(rw.hi - rw.lo)));
      const auto top = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(height_ - cut_h + 1)));
      const auto left = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(width_ - cut_w + 1)));
      m.box = corner_box(cut_h, cut_w, top, left);
    }
    if (correct_lam_ || !minmax_.empty()) m.lam = box_lam(m.box, height_, width_);
    if (float32_lam) m.lam = static_cast<float>(m.lam);
    return m;
  }

  MixMode mode_;
  double prob_;
  double smoothing_;
  std::int64_t num_classes_;
  double mixup_alpha_ = 0, cutmix_alpha_ = 0, switch_prob_ = 0;
  bool correct_lam_ = true;
  std::vector<double> minmax_;
  std::int64_t height_ = 0, width_ = 0;
};

const char* const kMixNotes =
    "Partner of sample i: sample N - 1 - i (the batch reversed, as timm; torchvision's v2 MixUp\n"
    "and CutMix roll by one instead). Every batch leaves with soft targets (N, K): one-hot\n"
    "smoothed by label_smoothing (off = s / K, on = 1 - s + off), mixed as lam * y + (1 - lam) *\n"
    "y_partner; the train stage then uses them as they are (its own label_smoothing applies to\n"
    "batches without soft targets only) and counts a mixed sample correct when the model's top\n"
    "class is the target's largest entry. The label-error check skips soft-target batches.\n"
    "Place it on the training chain only: evaluation refuses mixed batches. uint8 batches mix\n"
    "in float32 and round (as timm's FastCollateMixup); modes batch | pair | elem draw once per\n"
    "batch, per pair (i, N-1-i) or per sample.";

// Before the run: two mix stages on one chain, a half-given cutmix_minmax, nothing to mix.
void check_mix_node(const CheckedNode& node, std::vector<CheckFinding>& findings) {
  const Params& p = *node.params;
  if (!node.inputs.empty()) {
    if (const CheckedNode::Upstream* other = mixing_node(node.inputs[0]))
      findings.push_back({"", "node '" + other->id + "' upstream mixes these batches already; keep one mix stage "
                                                      "(mixup_cutmix does both)"});
  }
  if (p.values().count("cutmix_minmax")) {
    const auto& minmax = p.number_list("cutmix_minmax");
    if (minmax.size() == 1 || (minmax.size() == 2 && minmax[0] >= minmax[1]))
      findings.push_back({"cutmix_minmax", "expected [] or [low, high] with low < high"});
  }
  if (p.values().count("mixup_alpha") && p.number("mixup_alpha") <= 0 && p.number("cutmix_alpha") <= 0 &&
      p.number_list("cutmix_minmax").empty())
    findings.push_back({"mixup_alpha", "nothing to mix: set mixup_alpha or cutmix_alpha above 0 (or cutmix_minmax)"});
}

PluginInfo mix_plugin(const std::string& name, const std::string& summary, const std::string& example) {
  PluginInfo p = batch_transform_plugin(name, summary, std::string(kMixNotes) + "\n\n  " + example);
  p.outputs = {{"out", kBatchKind, "mixed batches with soft targets (N, K), on the same device"}};
  p.check = check_mix_node;
  return p;
}

}  // namespace

PluginInfo mixup_plugin() {
  PluginInfo p = mix_plugin("mixup", "Mixup: each batch blended with its reverse, lam ~ Beta(alpha, alpha) (timm Mixup)",
                            "{\"id\": \"mix\", \"plugin\": \"mixup\", \"params\": {\"alpha\": 0.8}}");
  declare_options<MixupOptions>(p.params);
  p.create = [](const StageArgs& args) {
    return std::make_unique<MixStage>(args, Which::Mixup, read_options<MixupOptions>(args.params));
  };
  return p;
}

PluginInfo cutmix_plugin() {
  PluginInfo p = mix_plugin("cutmix", "CutMix: a box of each sample replaced by its partner's (timm Mixup, cutmix only)",
                            "{\"id\": \"mix\", \"plugin\": \"cutmix\", \"params\": {\"alpha\": 1.0}}");
  declare_options<CutmixOptions>(p.params);
  p.create = [](const StageArgs& args) {
    return std::make_unique<MixStage>(args, Which::Cutmix, read_options<CutmixOptions>(args.params));
  };
  return p;
}

PluginInfo mixup_cutmix_plugin() {
  PluginInfo p = mix_plugin(
      "mixup_cutmix", "Mixup or CutMix per batch (or sample), switching with switch_prob (timm Mixup)",
      "{\"id\": \"mix\", \"plugin\": \"mixup_cutmix\", \"params\": {\"mixup_alpha\": 0.8, \"cutmix_alpha\": 1.0}}");
  declare_options<MixupCutmixOptions>(p.params);
  p.create = [](const StageArgs& args) {
    return std::make_unique<MixStage>(args, Which::Both, read_options<MixupCutmixOptions>(args.params));
  };
  return p;
}

}  // namespace flowrun
