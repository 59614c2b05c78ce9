// The train step's rules, checked on a tiny ViT with synthetic batches: parameter
// groups, learning-rate formulas, freezing, schedules, accumulation, determinism.
#include <gtest/gtest.h>

#include <cmath>

#include "model/vit_test_util.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun::testing {
namespace {

TrainConfig tiny(Strategy strategy, std::uint64_t seed = 1) {
  TrainConfig t;
  t.model = fixture_config(4, VitPool::Cls, 1e-6);
  t.model.depth = 4;
  t.init = VitInit::Timm;    // these tests were tuned on timm's start (zero biases and head)
  t.label_smoothing = 0.0;
  t.strategy = strategy;
  t.lr = 1e-2;
  t.warmup_steps = 0;
  t.schedule = ScheduleKind::Constant;
  t.seed = seed;
  return t;
}

struct Data {
  torch::Tensor images, labels;
};

Data batch(int n, int seed) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  return {torch::randn({n, 3, 32, 32}, g), torch::randint(0, 4, {n}, g)};
}

std::map<std::string, torch::Tensor> snapshot(Vit& model) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : model->named_parameters()) s[p.key()] = p.value().detach().clone();
  return s;
}

TEST(Trainer, LlrdGivesEveryGroupBaseLrTimesDecayToTheLayersBelowTheHead) {
  TrainConfig c = tiny(Strategy::Llrd);
  c.layer_decay = 0.5;
  Trainer t(c);
  t.set_total_steps(10);
  const int depth = c.model.depth;
  for (std::size_t i = 0; i < t.groups().size(); ++i) {
    const ParamGroup& g = t.groups()[i];
    const double expected = c.lr * std::pow(0.5, depth + 1 - g.layer);
    EXPECT_DOUBLE_EQ(t.lr(i), expected) << g.names.front();
    for (const auto& name : g.names) EXPECT_EQ(vit_layer_id(name, depth), g.layer) << name;
  }
  // The anchors of the formula.
  EXPECT_EQ(vit_layer_id("patch_embed.proj.weight", depth), 0);
  EXPECT_EQ(vit_layer_id("pos_embed", depth), 0);
  EXPECT_EQ(vit_layer_id("cls_token", depth), 0);
  EXPECT_EQ(vit_layer_id("blocks.0.attn.qkv.weight", depth), 1);
  EXPECT_EQ(vit_layer_id("blocks.3.mlp.fc2.bias", depth), 4);
  EXPECT_EQ(vit_layer_id("head.weight", depth), depth + 1);
}

TEST(Trainer, NoWeightDecayOnNormsBiasesPositionEmbeddingAndClsToken) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.weight_decay = 0.5;
  Trainer t(c);
  t.set_total_steps(10);
  for (const ParamGroup& g : t.groups()) {
    for (const auto& name : g.names) {
      const bool excluded = name.find("norm") != std::string::npos || name.find("bias") != std::string::npos ||
                            name == "pos_embed" || name == "cls_token";
      EXPECT_EQ(g.weight_decay, excluded ? 0.0 : 0.5) << name;
    }
  }
  // What the optimizer itself was given, for AdamW and SGD.
  for (std::size_t i = 0; i < t.groups().size(); ++i) EXPECT_EQ(t.weight_decay(i), t.groups()[i].weight_decay);
  c.optimizer = Optimizer::Sgd;
  Trainer sgd(c);
  for (std::size_t i = 0; i < sgd.groups().size(); ++i) EXPECT_EQ(sgd.weight_decay(i), sgd.groups()[i].weight_decay);
  int decayed = 0;
  for (const ParamGroup& g : t.groups()) decayed += g.weight_decay > 0 ? static_cast<int>(g.names.size()) : 0;
  EXPECT_EQ(decayed, 1 + 4 * 4 + 1) << "patch projection, 4 matrices per block, head";
}

TEST(Trainer, LinearProbeLeavesTheEncoderBitwiseUnchanged) {
  Trainer t(tiny(Strategy::LinearProbe));
  t.set_total_steps(10);
  auto before = snapshot(t.model());
  for (int i = 0; i < 5; ++i) {
    Data d = batch(8, i);
    t.train_batch(d.images, d.labels, {}, 0);
  }
  int changed_head = 0;
  for (const auto& [name, value] : before) {
    const bool same = torch::equal(value, t.model()->named_parameters()[name]);
    if (name.rfind("head.", 0) == 0) {
      changed_head += !same;
    } else if (name.rfind("norm.", 0) != 0) {
      EXPECT_TRUE(same) << name << " changed under linear probing";
    }
  }
  EXPECT_EQ(changed_head, 2) << "head weight and bias train";
}

TEST(Trainer, GradualUnfreezingEnablesExactlyTheStatedBlocksAtEachBoundary) {
  TrainConfig c = tiny(Strategy::GradualUnfreeze);
  c.unfreeze.at = {1, 3};
  c.unfreeze.blocks = {2, -1};
  Trainer t(c);
  t.set_total_steps(100);
  auto trainable = [&] {
    std::set<std::string> names;
    for (const auto& p : t.model()->named_parameters())
      if (p.value().requires_grad()) names.insert(p.key());
    return names;
  };
  auto block_of = [](const std::string& n) { return n.rfind("blocks.", 0) == 0 ? std::stoi(n.substr(7)) : -1; };
  Data d = batch(4, 1);
  for (std::int64_t epoch : {0, 1, 2, 3}) {
    t.train_batch(d.images, d.labels, {}, epoch);
    for (const auto& p : t.model()->named_parameters()) {
      const std::string& n = p.key();
      const bool head = n.rfind("head.", 0) == 0 || n.rfind("norm.", 0) == 0;
      bool want = head;
      if (epoch >= 1) want = want || block_of(n) >= 2;  // the last 2 of 4 blocks
      if (epoch >= 3) want = true;                       // everything, embeddings too
      EXPECT_EQ(p.value().requires_grad(), want) << n << " at epoch " << epoch;
    }
  }
  EXPECT_EQ(trainable().size(), t.model()->named_parameters().size());
}

TEST(Trainer, GradualUnfreezingCountsStepsWhenAsked) {
  UnfreezePlan plan;
  plan.by_steps = true;
  plan.at = {10, 20};
  plan.blocks = {1, 3};
  EXPECT_EQ(unfrozen_blocks(Strategy::GradualUnfreeze, plan, 5, 9), 0);
  EXPECT_EQ(unfrozen_blocks(Strategy::GradualUnfreeze, plan, 0, 10), 1);
  EXPECT_EQ(unfrozen_blocks(Strategy::GradualUnfreeze, plan, 0, 25), 3);
  EXPECT_TRUE(is_trainable("blocks.5.attn.qkv.weight", 6, 1));
  EXPECT_FALSE(is_trainable("blocks.4.attn.qkv.weight", 6, 1));
  EXPECT_FALSE(is_trainable("pos_embed", 6, 5));
  EXPECT_TRUE(is_trainable("pos_embed", 6, 6));
  plan.blocks = {1};
  EXPECT_THROW(plan.check(), std::invalid_argument);
}

TEST(Schedule, WarmupThenCosineAtChosenSteps) {
  LrSchedule s = LrSchedule::make(ScheduleKind::Cosine, 110, 10, 0.0, 0.0);
  EXPECT_DOUBLE_EQ(s.factor(0), 0.1);
  EXPECT_DOUBLE_EQ(s.factor(4), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(9), 1.0);
  EXPECT_DOUBLE_EQ(s.factor(10), 1.0);
  EXPECT_NEAR(s.factor(60), 0.5, 1e-12);                                 // half way through the decay
  EXPECT_NEAR(s.factor(35), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  EXPECT_NEAR(s.factor(110), 0.0, 1e-12);
  LrSchedule floor = LrSchedule::make(ScheduleKind::Cosine, 110, 10, 0.0, 0.1);
  EXPECT_NEAR(floor.factor(60), 0.1 + 0.9 * 0.5, 1e-12);
  LrSchedule linear = LrSchedule::make(ScheduleKind::Linear, 110, -1, 0.1, 0.0);
  EXPECT_EQ(linear.warmup_steps, 11);
  EXPECT_NEAR(linear.factor(11 + 99 / 3), 1.0 - 33.0 / 99.0, 1e-12);
  EXPECT_DOUBLE_EQ(LrSchedule::make(ScheduleKind::Constant, 50, 0, 0, 0).factor(49), 1.0);
}

TEST(Trainer, TheScheduleDrivesEveryGroupsLr) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.schedule = ScheduleKind::Cosine;
  c.warmup_steps = 2;
  Trainer t(c);
  t.set_total_steps(6);
  Data d = batch(4, 2);
  std::vector<double> lrs;
  for (int i = 0; i < 6; ++i) {
    lrs.push_back(t.lr(0));
    t.train_batch(d.images, d.labels, {}, 0);
  }
  LrSchedule s = LrSchedule::make(ScheduleKind::Cosine, 6, 2, 0, 0);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(lrs[static_cast<std::size_t>(i)], c.lr * s.factor(i), 1e-15) << i;
}

std::vector<double> losses(std::uint64_t seed, int steps) {
  TrainConfig c = tiny(Strategy::FullFinetune, seed);
  c.model.drop_path = 0.2;  // randomness inside the step must be seeded too
  c.model.dropout = 0.1;
  Trainer t(c);
  t.set_total_steps(steps);
  std::vector<double> out;
  for (int i = 0; i < steps; ++i) {
    Data d = batch(8, i);
    out.push_back(t.train_batch(d.images, d.labels, {}, 0).loss);
  }
  return out;
}

TEST(Trainer, SameSeedGivesAnIdenticalLossSequence) {
  const auto a = losses(5, 20), b = losses(5, 20), other = losses(6, 20);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
}

TEST(Trainer, AccumulatingFourBatchesOf16MatchesOneBatchOf64) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.lr = 1e-3;
  Trainer whole(c);
  c.accumulation = 4;
  Trainer parts(c);
  whole.set_total_steps(3);
  parts.set_total_steps(3);
  for (int step = 0; step < 3; ++step) {
    Data d = batch(64, 100 + step);
    EXPECT_TRUE(whole.train_batch(d.images, d.labels, {}, 0).stepped);
    for (int k = 0; k < 4; ++k) {
      const StepStats s = parts.train_batch(d.images.narrow(0, 16 * k, 16), d.labels.narrow(0, 16 * k, 16), {}, 0);
      EXPECT_EQ(s.stepped, k == 3);
    }
  }
  EXPECT_EQ(whole.step(), 3);
  EXPECT_EQ(parts.step(), 3);
  auto a = whole.model()->named_parameters();
  double worst = 0;
  for (const auto& p : parts.model()->named_parameters())
    worst = std::max(worst, (p.value() - a[p.key()]).abs().max().item<double>());
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(worst, 0.0) << "sums in another order differ in the last bits; equality would mean nothing trained";
}

// A state saved mid-accumulation (gradients of 2 of 3 micro-batches held), loaded
// into a trainer built fresh with another seed, continues exactly like the original:
// weights, EMA, AdamW moments and the dropout / drop-path draws.
TEST(Trainer, StateSavedMidAccumulationContinuesBitIdentically) {
  for (const Optimizer optimizer : {Optimizer::AdamW, Optimizer::Sgd}) {
    SCOPED_TRACE(optimizer_name(optimizer));
    TrainConfig c = tiny(Strategy::FullFinetune, 3);
    c.optimizer = optimizer;
    c.model.dropout = 0.1;
    c.model.drop_path = 0.2;
    c.accumulation = 3;
    c.ema_decay = 0.9;
    c.warmup_steps = 2;
    c.schedule = ScheduleKind::Cosine;
    Trainer original(c);
    original.set_total_steps(4);
    for (int i = 0; i < 5; ++i) original.train_batch(batch(8, i).images, batch(8, i).labels, {}, 0);
    TrainState state;
    original.save_state(state);
    ASSERT_EQ(state.counter("trainer/micro"), 2);
    ASSERT_NE(state.find("grad/head.weight"), nullptr);
    // The original goes on first: dropout draws from the process-wide generator, which
    // both trainers share, so they cannot step in turns.
    std::vector<double> expected;
    for (int i = 5; i < 12; ++i) expected.push_back(original.train_batch(batch(8, i).images, batch(8, i).labels, {}, 0).loss);
    TrainState a;
    original.save_state(a);
    c.seed = 99;  // another init and generator state: everything must come from the state
    Trainer resumed(c);
    resumed.set_total_steps(4);
    resumed.load_state(state);
    EXPECT_EQ(resumed.step(), 1);
    std::vector<double> got;
    for (int i = 5; i < 12; ++i) got.push_back(resumed.train_batch(batch(8, i).images, batch(8, i).labels, {}, 0).loss);
    EXPECT_EQ(expected, got);
    TrainState b;
    resumed.save_state(b);
    ASSERT_EQ(a.tensors.size(), b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
      EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
      EXPECT_TRUE(a.tensors[i].second.equal(b.tensors[i].second)) << a.tensors[i].first;
    }
  }
}

// The fused AdamW kernel (the default) against LibTorch's per-parameter loop: same
// weights and moments after steps with decay groups, LLRD, warmup and clipping.
TEST(Trainer, FusedAdamWMatchesLibTorchsLoop) {
  TrainConfig c = tiny(Strategy::Llrd, 4);
  c.lr = 3e-3;
  c.warmup_steps = 2;
  c.schedule = ScheduleKind::Cosine;
  c.clip_grad_norm = 0.5;
  c.fused_optimizer = true;
  Trainer fused(c);
  c.fused_optimizer = false;
  Trainer loop(c);
  fused.set_total_steps(6);
  loop.set_total_steps(6);
  for (int i = 0; i < 6; ++i) {
    Data d = batch(8, 40 + i);
    const StepStats a = fused.train_batch(d.images, d.labels, {}, 0);
    const StepStats b = loop.train_batch(d.images, d.labels, {}, 0);
    EXPECT_NEAR(a.loss, b.loss, 1e-5);
  }
  TrainState a, b;
  fused.save_state(a);
  loop.save_state(b);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  std::size_t moments = 0;
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& [name, value] = a.tensors[i];
    ASSERT_EQ(name, b.tensors[i].first);
    if (name.rfind("rng/", 0) == 0) continue;
    if (name.find("/exp_avg") != std::string::npos) ++moments;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, "/step") == 0) {
      EXPECT_EQ(value.item<std::int64_t>(), 6) << name;
      continue;
    }
    EXPECT_TRUE(value.allclose(b.tensors[i].second, 1e-4, 1e-6)) << name;
  }
  EXPECT_EQ(moments, 2 * fused.model()->parameters().size());
}

// With plain SGD at lr 1 the update is the clipped gradient: its global norm is the limit.
TEST(Trainer, ClippingScalesTheGlobalNormToTheLimit) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.optimizer = Optimizer::Sgd;
  c.momentum = 0;
  c.weight_decay = 0;
  c.lr = 1.0;
  c.clip_grad_norm = 1e-3;
  Trainer t(c);
  t.set_total_steps(1);
  const auto before = snapshot(t.model());
  Data d = batch(8, 5);
  const StepStats s = t.train_batch(d.images, d.labels, {}, 0);
  ASSERT_GT(s.grad_norm, 1e-2);
  double squares = 0;
  for (const auto& p : t.model()->named_parameters())
    squares += (p.value() - before.at(p.key())).pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(squares), 1e-3, 1e-7);
}

TEST(Trainer, SoftTargetsAndClippingAndEma) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.clip_grad_norm = 1e-3;
  c.ema_decay = 0.9;
  Trainer t(c);
  t.set_total_steps(4);
  Data d = batch(8, 4);
  torch::Tensor soft = torch::nn::functional::one_hot(d.labels, 4).to(torch::kFloat) * 0.7 + 0.075;
  const StepStats s = t.train_batch(d.images, d.labels, soft, 0);
  EXPECT_TRUE(s.stepped);
  EXPECT_GT(s.grad_norm, 1e-3) << "the norm reported is the one before clipping";
  ASSERT_TRUE(t.has_ema());
  ClassificationMetrics live(4), ema(4);
  t.evaluate_batch(d.images, d.labels, live);
  t.evaluate_batch(d.images, d.labels, ema, true);
  EXPECT_EQ(live.count(), 8);
  EXPECT_EQ(live.top_k_accuracy(), 1.0) << "top-5 of 4 classes always hits";
  EXPECT_NE(live.loss(), ema.loss()) << "the EMA lags the live weights";
}

// A mix stage's targets come smoothed (timm's mixup_target): the trainer must not
// smooth them again. Smoothed one-hot soft targets then give the loss that the
// labels with label_smoothing give, whatever the trainer's own label_smoothing.
TEST(Trainer, SoftTargetsAreNotSmoothedTwice) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.label_smoothing = 0.1;
  Data d = batch(8, 4);
  const torch::Tensor smoothed = torch::nn::functional::one_hot(d.labels, 4).to(torch::kFloat) * 0.9 + 0.1 / 4;
  Trainer hard(c), soft(c);
  hard.set_total_steps(4);
  soft.set_total_steps(4);
  const StepStats with_labels = hard.train_batch(d.images, d.labels, {}, 0);
  const StepStats with_targets = soft.train_batch(d.images, d.labels, smoothed, 0);
  EXPECT_NEAR(with_labels.loss, with_targets.loss, 1e-5);
  EXPECT_EQ(with_labels.correct, with_targets.correct) << "accuracy counts the target's largest class";
}

// The train stage's mode: each step's numbers stay on the device and are read later.
// Clipping on the device (a clamped coefficient) must give the host path's weights bit
// for bit, and the numbers read later must be the ones the host path reads at once.
TEST(Trainer, DeferredReadsGiveTheImmediateNumbersAndWeights) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.clip_grad_norm = 0.05;  // below the norm in some steps, so the coefficient matters
  c.accumulation = 2;
  Trainer immediate(c);
  c.defer_reads = true;
  Trainer deferred(c);
  immediate.set_total_steps(4);
  deferred.set_total_steps(4);
  std::vector<StepStats> later;
  std::vector<std::vector<Trainer::Outcome>> now_outcomes, later_outcomes(8);
  int clipped = 0;
  for (int i = 0; i < 8; ++i) {
    const Data d = batch(8, 20 + i);
    now_outcomes.emplace_back();
    const StepStats now = immediate.train_batch(d.images, d.labels, {}, 0, &now_outcomes.back());
    std::vector<Trainer::Outcome> none;
    later.push_back(deferred.train_batch(d.images, d.labels, {}, 0, &none));
    EXPECT_TRUE(none.empty()) << "deferred outcomes arrive with read_stats";
    EXPECT_TRUE(later.back().pending);
    clipped += now.stepped && now.grad_norm > c.clip_grad_norm;
    if (i >= 2) deferred.read_stats(later[i - 2], &later_outcomes[i - 2]);  // two steps behind, as the stage reads
  }
  EXPECT_GT(clipped, 0);
  for (int i = 6; i < 8; ++i) deferred.read_stats(later[i], &later_outcomes[i]);
  TrainConfig rc = tiny(Strategy::FullFinetune);
  rc.clip_grad_norm = 0.05;
  rc.accumulation = 2;
  Trainer again(rc);  // the immediate numbers again, step by step
  again.set_total_steps(4);
  for (int i = 0; i < 8; ++i) {
    const Data d = batch(8, 20 + i);
    const StepStats now = again.train_batch(d.images, d.labels, {}, 0);
    EXPECT_EQ(later[i].loss, now.loss) << "micro-batch " << i;
    EXPECT_EQ(later[i].correct, now.correct);
    EXPECT_EQ(later[i].grad_norm, now.grad_norm);
    EXPECT_EQ(later[i].stepped, now.stepped);
    ASSERT_EQ(later_outcomes[i].size(), now_outcomes[i].size());
    for (std::size_t k = 0; k < now_outcomes[i].size(); ++k) {
      EXPECT_EQ(later_outcomes[i][k].predicted, now_outcomes[i][k].predicted);
      EXPECT_EQ(later_outcomes[i][k].confidence, now_outcomes[i][k].confidence);
      EXPECT_EQ(later_outcomes[i][k].loss, now_outcomes[i][k].loss);
    }
  }
  const auto a = snapshot(immediate.model()), b = snapshot(deferred.model());
  for (const auto& [name, value] : a) EXPECT_TRUE(value.equal(b.at(name))) << name << " differs after clipping on the device";
}

TEST(Trainer, DeferredReadsStillCatchADivergence) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.defer_reads = true;
  Trainer t(c);
  t.set_total_steps(4);
  Data d = batch(8, 3);
  StepStats first = t.train_batch(d.images, d.labels, {}, 0);
  t.read_stats(first);
  d.images[0][0][0][0] = std::numeric_limits<float>::quiet_NaN();
  StepStats s = t.train_batch(d.images, d.labels, {}, 0);  // no throw: nothing was read yet
  try {
    t.read_stats(s);
    FAIL() << "a NaN loss was read without complaint";
  } catch (const DivergedError& e) {
    EXPECT_NE(std::string(e.what()).find("nan at step 1"), std::string::npos) << e.what();
  }
}

TEST(Trainer, Bf16AutocastTrainsOnTheCpu) {
  TrainConfig c = tiny(Strategy::FullFinetune);
  c.precision = Precision::Bf16;
  Trainer t(c);
  t.set_total_steps(2);
  Data d = batch(8, 9);
  const StepStats s = t.train_batch(d.images, d.labels, {}, 0);
  EXPECT_TRUE(std::isfinite(s.loss));
  EXPECT_EQ(t.model()->head->weight.scalar_type(), torch::kFloat) << "master weights stay float32";
}

}  // namespace
}  // namespace flowrun::testing
