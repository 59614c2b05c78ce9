// The train step on each device, parameterised over cpu and cuda: the CUDA cases skip
// without a GPU, saying why, and bench/device_check.sh runs them on one. On the CPU they
// hold bit for bit; on CUDA with deterministic algorithms where ATen has them and within
// tolerances (losses 1e-4 relative, weights 1e-3 / 1e-4), a first guess no GPU has
// checked yet: some kernels (attention's backward) may sum in another order per run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "model/vit_test_util.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/evaluate/evaluation_pass.hpp"
#include "stages/messages/model_snapshot.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/label_check.hpp"
#include "stages/train/trainer.hpp"
#include "support/sync_errors.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

class TrainerOn : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device here (torch::cuda::is_available() is false); bench/device_check.sh runs this "
                      "case on a GPU";
  }
  void TearDown() override {
    if (cuda()) at::globalContext().setDeterministicAlgorithms(false, false);
  }
  // cuda:0, not "cuda": a tensor's device has its index, and Device's == compares it.
  torch::Device device() const { return cuda() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU); }
  bool cuda() const { return GetParam() == "cuda"; }
  // On CUDA, deterministic kernels where there are some (warn where there are none):
  // attention's backward may otherwise sum in another order from run to run.
  void deterministic() const {
    if (cuda()) at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  }

  TrainConfig tiny(std::uint64_t seed = 1) const {
    TrainConfig t;
    t.model = fixture_config(4, VitPool::Cls, 1e-6);
    t.model.depth = 2;
    t.init = VitInit::Timm;
    t.strategy = Strategy::FullFinetune;
    t.lr = cuda() ? 1e-3 : 1e-2;  // AdamW's first steps move each weight by about lr, whatever the sign noise
    t.warmup_steps = 0;
    t.schedule = ScheduleKind::Constant;
    t.seed = seed;
    t.device = GetParam();
    return t;
  }

  // A batch already on the device, as to_device hands it over.
  std::pair<torch::Tensor, torch::Tensor> batch(int n, int seed) const {
    auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
    return {torch::randn({n, 3, 32, 32}, g).to(device()), torch::randint(0, 4, {n}, g).to(device())};
  }

  // fp16 configurations, one per way the overflow flag travels: read at once (immediate
  // reads, or the AdamW loop, which has no found-inf input), or handed to the fused
  // kernel and read with the step's deferred numbers.
  std::vector<std::pair<std::string, TrainConfig>> fp16_flag_routes() const {
    std::vector<std::pair<std::string, TrainConfig>> routes;
    for (const bool defer : {false, true})
      for (const bool fused : {true, false}) {
        TrainConfig c = tiny();
        c.precision = Precision::Fp16;
        c.defer_reads = defer;
        c.fused_optimizer = fused;
        routes.emplace_back(std::string(defer ? "deferred reads" : "immediate reads") + (fused ? ", fused AdamW" : ", AdamW loop"), c);
      }
    return routes;
  }

  void expect_close(double a, double b, const std::string& what) const {
    if (cuda()) EXPECT_NEAR(a, b, 1e-4 * std::max(1.0, std::abs(b))) << what;
    else EXPECT_EQ(a, b) << what;
  }
  void expect_same_weights(Vit& a, Vit& b) const {
    auto other = b->named_parameters();
    for (const auto& p : a->named_parameters()) {
      const torch::Tensor x = p.value().detach().cpu(), y = other[p.key()].detach().cpu();
      if (cuda()) EXPECT_TRUE(torch::allclose(x, y, 1e-3, 1e-4)) << p.key();
      else EXPECT_TRUE(x.equal(y)) << p.key();
    }
  }
};

// The train stage reads each step's numbers two steps later, from pinned memory behind an
// event: the same numbers as reading them at once.
TEST_P(TrainerOn, DeferredReadsGiveTheImmediateNumbersAndWeights) {
  deterministic();
  TrainConfig c = tiny();
  c.clip_grad_norm = 0.05;
  Trainer immediate(c);
  c.defer_reads = true;
  Trainer deferred(c);
  immediate.set_total_steps(6);
  deferred.set_total_steps(6);
  std::vector<StepStats> now, later;
  for (int i = 0; i < 6; ++i) {
    const auto [x, y] = batch(8, 40 + i);
    now.push_back(immediate.train_batch(x, y, {}, 0));
    later.push_back(deferred.train_batch(x, y, {}, 0));
    EXPECT_TRUE(later.back().pending);
    if (i >= 2) deferred.read_stats(later[static_cast<std::size_t>(i - 2)]);
  }
  for (int i = 4; i < 6; ++i) deferred.read_stats(later[static_cast<std::size_t>(i)]);
  for (std::size_t i = 0; i < now.size(); ++i) {
    expect_close(later[i].loss, now[i].loss, "loss of step " + std::to_string(i));
    expect_close(later[i].grad_norm, now[i].grad_norm, "grad norm of step " + std::to_string(i));
  }
  expect_same_weights(immediate.model(), deferred.model());
}

// bf16 autocast with an EMA of the weights: master weights and the EMA stay float32 on
// the device, finite, and the EMA trails the weights.
TEST_P(TrainerOn, Bf16AutocastWithEmaTrainsOnTheDevice) {
  TrainConfig c = tiny();
  c.precision = Precision::Bf16;
  c.ema_decay = 0.9;
  c.defer_reads = true;
  Trainer t(c);
  t.set_total_steps(4);
  std::vector<StepStats> steps;
  for (int i = 0; i < 4; ++i) {
    const auto [x, y] = batch(8, 60 + i);
    steps.push_back(t.train_batch(x, y, {}, 0));
  }
  for (StepStats& s : steps) {
    t.read_stats(s);
    EXPECT_TRUE(std::isfinite(s.loss));
  }
  ASSERT_TRUE(t.ema_model());
  const torch::Tensor w = t.model()->head->weight, e = t.ema_model()->head->weight;
  EXPECT_EQ(w.device(), device());
  EXPECT_EQ(e.device(), device());
  EXPECT_EQ(w.scalar_type(), torch::kFloat);
  EXPECT_EQ(e.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::isfinite(e).all().item<bool>());
  EXPECT_FALSE(torch::equal(w, e)) << "the EMA trails the weights";
}

// A state saved on the device (weights, EMA, optimizer moments, the device's generator
// for dropout and drop path), written to a checkpoint file and read back, resumes in a
// fresh trainer to the same weights.
TEST_P(TrainerOn, SavedStateResumesToTheSameWeights) {
  deterministic();
  TrainConfig c = tiny(3);
  c.model.dropout = 0.1;
  c.model.drop_path = 0.2;
  c.ema_decay = 0.9;
  Trainer original(c);
  original.set_total_steps(8);
  for (int i = 0; i < 3; ++i) {
    const auto [x, y] = batch(8, i);
    original.train_batch(x, y, {}, 0);
  }
  TrainState state;
  original.save_state(state);
  if (cuda()) {
    EXPECT_NE(state.find("rng/torch_cuda"), nullptr) << "the CUDA generator's state is saved";
  }
  for (int i = 3; i < 6; ++i) {
    const auto [x, y] = batch(8, i);
    original.train_batch(x, y, {}, 0);
  }
  TempDir dir;
  write_checkpoint(state, dir.path() + "/step3.h5", "{}");
  const CheckpointFile file = read_checkpoint(dir.path() + "/step3.h5");
  c.seed = 99;  // another start: everything must come from the file
  Trainer resumed(c);
  resumed.set_total_steps(8);
  resumed.load_state(file.state);
  for (int i = 3; i < 6; ++i) {
    const auto [x, y] = batch(8, i);
    resumed.train_batch(x, y, {}, 0);
  }
  expect_same_weights(original.model(), resumed.model());
  expect_same_weights(original.ema_model(), resumed.ema_model());
}

// fp16 autocast scales the loss (LossScaler: GradScaler's rule, on the device). A step
// whose gradients are not finite leaves the weights, the AdamW moments and step counts
// as they were, halves the scale and still counts towards the schedule; a state saved
// after it resumes to the same weights and scale. Every way the flag can travel: read
// at once (immediate mode, or an optimizer without a found-inf input), or handed to the
// fused AdamW kernel and learnt from the step's deferred numbers.
TEST_P(TrainerOn, Fp16LossScalingSkipsAnOverflowingStep) {
  for (const auto& [route, c] : fp16_flag_routes()) {
    SCOPED_TRACE(route);
    Trainer t(c);
    t.set_total_steps(6);
    auto [x, y] = batch(8, 1);
    StepStats first = t.train_batch(x, y, {}, 0);
    t.read_stats(first);
    EXPECT_FALSE(first.skipped);
    TrainState before;
    t.save_state(before);
    EXPECT_EQ(before.value("trainer/loss_scale"), 65536.0);
    EXPECT_EQ(before.counter("trainer/good_steps"), 1);

    torch::Tensor bad = x.clone();
    bad[0][0][0][0] = std::numeric_limits<float>::infinity();
    StepStats overflow = t.train_batch(bad, y, {}, 0);
    t.read_stats(overflow);
    EXPECT_TRUE(overflow.skipped);
    EXPECT_EQ(t.step(), 2) << "a skipped step still counts towards the schedule";
    TrainState after;
    t.save_state(after);
    EXPECT_EQ(after.value("trainer/loss_scale"), 32768.0);
    EXPECT_EQ(after.counter("trainer/good_steps"), 0);
    int compared = 0;
    for (const auto& [name, tensor] : before.tensors) {
      if (name.rfind("model/", 0) != 0 && name.rfind("optimizer/", 0) != 0) continue;
      const at::Tensor* now = after.find(name);
      ASSERT_NE(now, nullptr) << name;
      EXPECT_TRUE(tensor.equal(*now)) << name << " changed in a skipped step";
      ++compared;
    }
    EXPECT_GT(compared, 10);

    Trainer resumed(c);  // from the state after the skip: same scale, counts and weights
    resumed.set_total_steps(6);
    resumed.load_state(after);
    for (Trainer* trainer : {&t, &resumed}) {
      StepStats next = trainer->train_batch(x, y, {}, 0);
      trainer->read_stats(next);
      EXPECT_FALSE(next.skipped);
    }
    expect_same_weights(t.model(), resumed.model());
    TrainState finite;
    t.save_state(finite);
    EXPECT_EQ(finite.value("trainer/loss_scale"), 32768.0);
    const at::Tensor* count = finite.find("optimizer/head.weight/step");
    ASSERT_NE(count, nullptr);
    EXPECT_EQ(count->item<std::int64_t>(), 2) << "two steps were taken, one skipped";
    EXPECT_FALSE(torch::equal(before.find("model/head.weight")->cpu(), t.model()->head->weight.detach().cpu()));
  }
}

// A run whose gradients are never finite (here: an inf pixel in every batch) does not
// skip steps forever: 25 in a row fail it as diverged, wherever the flag is read. A
// first step skipped by the fused kernel leaves its fresh moments at zero and its
// count at 0; where the flag was read on the host, no optimizer state was made.
TEST_P(TrainerOn, Fp16StepsThatNeverFinishFailTheRunAsDiverged) {
  for (const auto& [route, c] : fp16_flag_routes()) {
    SCOPED_TRACE(route);
    Trainer t(c);
    t.set_total_steps(40);
    auto [x, y] = batch(8, 2);
    x[0][0][0][0] = std::numeric_limits<float>::infinity();
    std::vector<StepStats> steps;
    int step = 0;
    bool diverged = false;
    try {
      for (; step < 40; ++step) {
        steps.push_back(t.train_batch(x, y, {}, 0));
        t.read_stats(steps.back());
        EXPECT_TRUE(steps.back().skipped) << "step " << step;
        if (step == 0) {
          TrainState state;
          t.save_state(state);
          const at::Tensor* count = state.find("optimizer/head.weight/step");
          if (c.fused_optimizer && c.defer_reads) {  // the flag went to the kernel
            ASSERT_NE(count, nullptr);
            EXPECT_EQ(count->item<std::int64_t>(), 0);
            EXPECT_EQ(state.find("optimizer/head.weight/exp_avg")->abs().sum().item<double>(), 0.0);
          } else {
            EXPECT_EQ(count, nullptr);
          }
        }
      }
    } catch (const DivergedError& e) {
      diverged = true;
      EXPECT_NE(std::string(e.what()).find("25 steps in a row"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(diverged);
    EXPECT_EQ(step, 24) << "the 25th skipped step fails the run";
  }
}

// No host sync inside a training step: under CUDA's sync debug mode every synchronising
// call throws. The train stage reads each step's numbers two steps later behind an event
// (not a stream or device sync), as here, and the label check reads host copies;
// logging and evaluation are where it may wait. A host sync is a CUDA notion: on the
// CPU the same steps run without the check, so that CI runs the test's own logic.
TEST_P(TrainerOn, TrainingStepsNeverSynchroniseTheHost) {
  if (cuda() && !SyncErrors::available()) GTEST_SKIP() << "this LibTorch has no CUDA headers";
  for (const Precision precision : {Precision::Bf16, Precision::Fp16}) {  // fp16: the loss scaler's flag stays on the device
    SCOPED_TRACE(precision == Precision::Bf16 ? "bf16" : "fp16");
    TrainConfig c = tiny();
    c.defer_reads = true;
    c.clip_grad_norm = 1.0;
    c.precision = precision;
    c.ema_decay = 0.99;
    Trainer t(c);
    t.set_total_steps(10);
    std::vector<std::pair<torch::Tensor, torch::Tensor>> batches;
    for (int i = 0; i < 10; ++i) batches.push_back(batch(8, 80 + i));
    const auto [wx, wy] = batch(8, 79);
    t.train_batch(wx, wy, {}, 0);  // the first step allocates and initialises (syncs allowed)
    // The label check on, in its last epoch (where it takes suspects' thumbnails): it
    // reads the host copies to_device keeps beside the device's tensors.
    std::vector<Batch> sent(10);
    for (int i = 0; i < 10; ++i) {
      Batch& b = sent[static_cast<std::size_t>(i)];
      std::tie(b.images, b.labels) = batches[static_cast<std::size_t>(i)];
      b.host_images = b.images.cpu();
      b.host_labels = b.labels.cpu();
      b.indices = torch::arange(8 * i, 8 * i + 8, torch::kLong);
      b.keys.assign(8, "sample");
    }
    LabelCheck check(0.0, 8);  // any wrong sighting is a suspect: every one takes a thumbnail
    std::vector<StepStats> pending;
    std::vector<Trainer::Outcome> ignored, outcomes;
    SyncErrors errors(cuda());
    for (int i = 0; i < 10; ++i) {
      EXPECT_NO_THROW(pending.push_back(t.train_batch(batches[static_cast<std::size_t>(i)].first,
                                                      batches[static_cast<std::size_t>(i)].second, {}, 0, &ignored)))
          << "step " << i << " synchronised with the host";
      if (i < 2) continue;
      outcomes.clear();  // read_stats appends
      EXPECT_NO_THROW(t.read_stats(pending[static_cast<std::size_t>(i - 2)], &outcomes)) << "reading step " << i - 2;
      EXPECT_NO_THROW(check.observe(sent[static_cast<std::size_t>(i - 2)], outcomes, /*last_epoch=*/true))
          << "the label check on step " << i - 2;
    }
    EXPECT_FALSE(check.take_suspects().empty()) << "a random model gets some of 64 samples wrong";
  }
}

// The evaluate node's pass over a snapshot lent on the device, batches on the device:
// its numbers are the model's own predictions, with the EMA's beside them, and the worst
// samples' thumbnails come back to the host.
TEST_P(TrainerOn, EvaluationOfASnapshotOnTheDevice) {
  TrainConfig c = tiny();
  c.ema_decay = 0.9;
  Trainer trainer(c);
  trainer.set_total_steps(4);
  for (int i = 0; i < 3; ++i) {
    const auto [x, y] = batch(16, 100 + i);
    trainer.train_batch(x, y, {}, 0);
  }
  auto snapshot = std::make_shared<ModelSnapshot>(std::make_shared<EvaluationAnswers>(), nullptr);
  snapshot->model = trainer.model();
  snapshot->ema = trainer.ema_model();
  snapshot->input = trainer.input();
  snapshot->precision = trainer.config().precision;
  snapshot->num_classes = trainer.model()->config.num_classes;
  snapshot->classes = {"a", "b", "c", "d"};
  snapshot->final = true;
  const auto [x, y] = batch(24, 200);
  Batch eval;
  eval.images = x;
  eval.labels = y;
  eval.indices = torch::arange(24, torch::kLong);
  for (int i = 0; i < 24; ++i) eval.keys.push_back("s" + std::to_string(i));
  EvaluationPass pass(*snapshot, 4);
  pass.add(eval);
  const auto values = pass.headline();
  EXPECT_EQ(values.at("samples"), 24);
  const torch::Tensor predicted = trainer.predict(x).argmax(1);
  expect_close(values.at("accuracy"), predicted.eq(y).to(torch::kDouble).mean().item<double>(), "accuracy");
  ASSERT_NE(pass.ema_metrics(), nullptr);
  const auto record = pass.take_evaluation("test");
  for (const Misclassified& m : record->worst) EXPECT_FALSE(m.thumbnail.rgb.empty());
}

INSTANTIATE_TEST_SUITE_P(Devices, TrainerOn, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace flowrun::testing
