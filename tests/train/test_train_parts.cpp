// The train stage's parts on their own: the label-error check (which samples it
// suspects, and that its counts survive a checkpoint), one evaluation pass
// (headline numbers, EMA, the worst misclassified samples) and fp16's loss scaler.
#include <gtest/gtest.h>

#include <limits>

#include "model/vit_test_util.hpp"
#include "stages/evaluate/evaluation_pass.hpp"
#include "stages/messages/model_snapshot.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/label_check.hpp"
#include "stages/train/loss_scaler.hpp"
#include "stages/train/train_params.hpp"
#include "stages/train/train_plugins.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun::testing {
namespace {

// GradScaler's numbers: 65536 to start, halved by a step with a non-finite gradient,
// doubled after 2,000 finite steps in a row; unscaling divides in place and flags infs
// and NaNs in any of the gradients.
TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterTheIntervalOfFiniteSteps) {
  LossScaler scaler(torch::kCPU);
  EXPECT_EQ(scaler.scale(torch::tensor(2.0f)).item<float>(), 131072.0f);
  std::vector<torch::Tensor> grads = {torch::tensor({65536.0f, 131072.0f}), torch::tensor({-65536.0f})};
  torch::Tensor found_inf = scaler.unscale(grads);
  EXPECT_EQ(found_inf.item<float>(), 0.0f);
  EXPECT_TRUE(grads[0].equal(torch::tensor({1.0f, 2.0f})));
  EXPECT_TRUE(grads[1].equal(torch::tensor({-1.0f})));
  scaler.update(found_inf);
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  EXPECT_EQ(scaler.finite_steps(), 1);

  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<torch::Tensor> some_bad = {torch::ones({3}), torch::tensor({1.0f, bad})};
    found_inf = scaler.unscale(some_bad);
    EXPECT_EQ(found_inf.item<float>(), 1.0f) << bad;
  }
  scaler.update(found_inf);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  EXPECT_EQ(scaler.finite_steps(), 0);

  const torch::Tensor finite = torch::zeros({1});
  for (std::int64_t i = 1; i < LossScaler::kGrowthInterval; ++i) scaler.update(finite);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  EXPECT_EQ(scaler.finite_steps(), LossScaler::kGrowthInterval - 1);
  scaler.update(finite);
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  EXPECT_EQ(scaler.finite_steps(), 0);

  scaler.restore(1024.0, 7);
  EXPECT_EQ(scaler.scale_value(), 1024.0);
  EXPECT_EQ(scaler.finite_steps(), 7);
}

// Four samples of classes 0-3 with dataset indices 10-13.
Batch four_samples(std::uint64_t epoch) {
  Batch b;
  b.images = torch::arange(4 * 3 * 8 * 8, torch::kFloat).reshape({4, 3, 8, 8});
  b.labels = torch::arange(4, torch::kLong);
  b.indices = torch::arange(10, 14, torch::kLong);
  b.keys = {"s10", "s11", "s12", "s13"};
  b.epoch = epoch;
  return b;
}

// The model's view in epoch e: sample 10 is confidently called class 1 every time;
// 11 is right; 12 is wrong every time but unsure; 13 is wrong once, in the last epoch.
std::vector<Trainer::Outcome> outcomes(int e, int last) {
  return {{1, 0.9, 2.0}, {1, 0.8, 0.1}, {0, 0.4, 1.5}, {e == last ? 0 : 3, 0.95, 0.5}};
}

TEST(LabelCheck, SuspectsSamplesContradictedConfidentlyInMostEpochs) {
  LabelCheck check(0.7, 10);
  ASSERT_TRUE(check.enabled());
  for (int e = 1; e <= 3; ++e) check.observe(four_samples(e), outcomes(e, 3), e == 3);
  const std::vector<Misclassified> suspects = check.take_suspects();
  ASSERT_EQ(suspects.size(), 1u);
  EXPECT_EQ(suspects[0].key, "s10");
  EXPECT_EQ(suspects[0].label, 0);
  EXPECT_EQ(suspects[0].predicted, 1);
  EXPECT_DOUBLE_EQ(suspects[0].confidence, 0.9);
  EXPECT_DOUBLE_EQ(suspects[0].loss, 1.0 + 0.9);  // the score: share of wrong epochs + mean confidence
  EXPECT_EQ(suspects[0].thumbnail.width, 8);
  EXPECT_EQ(suspects[0].thumbnail.rgb.size(), 8u * 8u * 3u);
  EXPECT_FALSE(LabelCheck(1.0, 10).enabled());
}

// On CUDA, labels or images read off the device would wait for the step just queued:
// the check reads the host copies to_device keeps, the suspects' thumbnails included.
// Tensors on the meta device (no data: any read throws) stand in for device tensors the
// host must not touch.
TEST(LabelCheck, ReadsTheHostCopiesOfLabelsAndImagesNotTheDevices) {
  LabelCheck check(0.7, 10);
  for (int e = 1; e <= 3; ++e) {
    Batch b = four_samples(e);
    b.host_labels = b.labels;
    b.host_images = b.images;
    b.labels = torch::empty({4}, torch::TensorOptions().dtype(torch::kLong).device(torch::kMeta));
    b.images = torch::empty({4, 3, 16, 16}, torch::TensorOptions().device(torch::kMeta));  // as if resized there
    check.observe(b, outcomes(e, 3), e == 3);
  }
  const std::vector<Misclassified> suspects = check.take_suspects();
  ASSERT_EQ(suspects.size(), 1u);
  EXPECT_EQ(suspects[0].key, "s10");
  EXPECT_EQ(suspects[0].thumbnail.width, 8) << "the thumbnail of the host's 8-px image";
  EXPECT_EQ(suspects[0].thumbnail.rgb.size(), 8u * 8u * 3u);
}

TEST(LabelCheck, LowerConfidenceThresholdAddsTheUnsureSample) {
  LabelCheck check(0.3, 10);
  for (int e = 1; e <= 3; ++e) check.observe(four_samples(e), outcomes(e, 3), e == 3);
  const std::vector<Misclassified> suspects = check.take_suspects();
  ASSERT_EQ(suspects.size(), 2u);
  EXPECT_EQ(suspects[0].key, "s10");  // strongest first
  EXPECT_EQ(suspects[1].key, "s12");
}

TEST(LabelCheck, CountsSurviveACheckpoint) {
  LabelCheck whole(0.7, 10), first(0.7, 10), resumed(0.7, 10);
  for (int e = 1; e <= 2; ++e) {
    whole.observe(four_samples(e), outcomes(e, 3), false);
    first.observe(four_samples(e), outcomes(e, 3), false);
  }
  TrainState state;
  first.save(state);
  ASSERT_NE(state.find("label_check/seen_wrong"), nullptr);
  resumed.load(state);
  whole.observe(four_samples(3), outcomes(3, 3), true);
  resumed.observe(four_samples(3), outcomes(3, 3), true);
  const auto a = whole.take_suspects(), b = resumed.take_suspects();
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].key, b[0].key);
  EXPECT_DOUBLE_EQ(a[0].loss, b[0].loss);
  TrainState empty;
  LabelCheck(0.7, 10).save(empty);
  EXPECT_EQ(empty.find("label_check/index"), nullptr);  // nothing observed, nothing written
}

TrainConfig tiny_with_ema() {
  TrainConfig t;
  t.model = fixture_config(4, VitPool::Cls, 1e-6);
  t.init = VitInit::Timm;
  t.label_smoothing = 0.0;
  t.ema_decay = 0.9;
  t.seed = 3;
  return t;
}

Batch random_batch(int n) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  Batch b;
  b.images = torch::randn({n, 3, 32, 32}, g);
  b.labels = torch::randint(0, 4, {n}, g);
  b.indices = torch::arange(n, torch::kLong);
  for (int i = 0; i < n; ++i) b.keys.push_back("img" + std::to_string(i));
  return b;
}

// The trainer's model lent as the train stage lends it.
std::shared_ptr<ModelSnapshot> lend(Trainer& trainer, std::uint64_t epoch, std::uint64_t step,
                                    std::vector<std::string> classes) {
  auto s = std::make_shared<ModelSnapshot>(std::make_shared<EvaluationAnswers>(), nullptr);
  s->model = trainer.model();
  s->ema = trainer.ema_model();
  s->input = trainer.input();
  s->precision = trainer.config().precision;
  s->num_classes = trainer.model()->config.num_classes;
  s->epoch = epoch;
  s->step = step;
  s->classes = std::move(classes);
  return s;
}

TEST(ModelSnapshot, ReleaseMarksTheAnswersAndCallsBackOnceWithAnswersInNodeOrder) {
  auto answers = std::make_shared<EvaluationAnswers>();
  int released = 0;
  auto snapshot = std::make_shared<ModelSnapshot>(answers, [&] { ++released; });
  std::shared_ptr<const ModelSnapshot> second_holder = snapshot;
  snapshot->answer({"val_b", {}, {{"accuracy", 0.5}}, nullptr});
  snapshot->answer({"val_a", {}, {{"accuracy", 0.25}}, nullptr});
  snapshot.reset();
  EXPECT_FALSE(answers->released());  // another holder still evaluates
  EXPECT_EQ(released, 0);
  second_holder.reset();
  EXPECT_TRUE(answers->released());
  EXPECT_EQ(released, 1);
  const auto taken = answers->take();
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].node, "val_a");  // by node id, not by arrival
  EXPECT_EQ(taken[1].node, "val_b");
  EXPECT_TRUE(answers->take().empty());
}

// Data-parallel ranks pool their worst samples as bytes: every field and the thumbnail
// survive, and the pooled list keeps the worst of both, highest loss first.
TEST(WorstSamples, PackedListsPoolIntoTheWorstOfBoth) {
  auto sample = [](const std::string& key, double loss) {
    Misclassified m;
    m.key = key;
    m.label = 3;
    m.predicted = 5;
    m.confidence = 0.75;
    m.loss = loss;
    m.thumbnail.width = 2;
    m.thumbnail.height = 1;
    m.thumbnail.rgb = {1, 2, 3, 4, 5, 6};
    return m;
  };
  WorstSamples rank0(3), rank1(3);
  rank0.add(sample("a.jpg", 1.0));
  rank0.add(sample("b.jpg", 4.0));
  rank1.add(sample("c.jpg", 3.0));
  rank1.add(sample("d.jpg", 0.5));
  WorstSamples pooled(3);
  pooled.add_packed(rank0.pack());
  pooled.add_packed(rank1.pack());
  const std::vector<Misclassified> worst = pooled.take();
  ASSERT_EQ(worst.size(), 3u);
  EXPECT_EQ(worst[0].key, "b.jpg");
  EXPECT_EQ(worst[1].key, "c.jpg");
  EXPECT_EQ(worst[2].key, "a.jpg");
  EXPECT_EQ(worst[1].label, 3);
  EXPECT_EQ(worst[1].predicted, 5);
  EXPECT_DOUBLE_EQ(worst[1].confidence, 0.75);
  EXPECT_EQ(worst[1].thumbnail.width, 2);
  EXPECT_EQ(worst[1].thumbnail.rgb, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}));
  WorstSamples cut(3);
  EXPECT_THROW(cut.add_packed(rank0.pack().substr(0, 10)), std::runtime_error);
}

TEST(EvaluationPass, HeadlineEmaAndWorstSamples) {
  Trainer trainer(tiny_with_ema());
  trainer.set_total_steps(10);
  // A few steps so that the live model and its EMA differ and predict more than one class.
  const Batch train = random_batch(16);
  for (int i = 0; i < 3; ++i) trainer.train_batch(train.images, train.labels, {}, 0);
  const Batch eval = random_batch(24);
  const auto model = lend(trainer, 2, 30, {"a", "b", "c", "d"});
  EvaluationPass pass(*model, 5);
  pass.add(eval);
  const auto values = pass.headline();
  EXPECT_EQ(values.at("samples"), 24);
  const torch::Tensor predicted = trainer.predict(eval.images).argmax(1);
  const double accuracy = predicted.eq(eval.labels).to(torch::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(values.at("accuracy"), accuracy);
  const torch::Tensor ema_predicted = trainer.predict(eval.images, true).argmax(1);
  EXPECT_DOUBLE_EQ(values.at("ema_accuracy"), ema_predicted.eq(eval.labels).to(torch::kDouble).mean().item<double>());
  ASSERT_NE(pass.ema_metrics(), nullptr);

  const auto record = pass.take_evaluation("val");
  EXPECT_EQ(record->split, "val");
  EXPECT_EQ(record->epoch, 2u);
  EXPECT_EQ(record->step, 30u);
  EXPECT_EQ(record->classes.size(), 4u);
  EXPECT_EQ(record->metrics.get(), &pass.metrics());
  const auto wrong = static_cast<std::size_t>(predicted.ne(eval.labels).sum().item<std::int64_t>());
  ASSERT_GT(wrong, 0u);
  EXPECT_EQ(record->worst.size(), std::min<std::size_t>(wrong, 5));
  for (std::size_t i = 0; i < record->worst.size(); ++i) {
    const Misclassified& m = record->worst[i];
    EXPECT_NE(m.predicted, m.label);
    if (i > 0) {
      EXPECT_GE(record->worst[i - 1].loss, m.loss);  // highest loss first
    }
  }
  EXPECT_TRUE(pass.take_evaluation("val")->worst.empty());  // handed over once
}

TEST(EvaluationPass, WithoutEmaOrWorstSamples) {
  TrainConfig config = tiny_with_ema();
  config.ema_decay = 0;
  Trainer trainer(config);
  const auto model = lend(trainer, 0, 0, {});
  EvaluationPass pass(*model, 0);
  pass.add(random_batch(8));
  pass.add(random_batch(8));
  EXPECT_EQ(pass.headline().at("samples"), 16);
  EXPECT_EQ(pass.headline().count("ema_accuracy"), 0u);
  EXPECT_EQ(pass.ema_metrics(), nullptr);
  EXPECT_TRUE(pass.take_evaluation("test")->worst.empty());
}

// The train plugin's defaults with some parameters changed, as validation would hand them over.
StageArgs train_args(const std::map<std::string, ParamValue>& changed) {
  std::map<std::string, ParamValue> values;
  const PluginInfo plugin = train_plugin();
  for (const ParamSpec& spec : plugin.params.specs())
    if (spec.default_value()) values[spec.name()] = *spec.default_value();
  for (const auto& [name, value] : changed) values[name] = value;
  StageArgs args;
  args.node_id = "train";
  args.params = Params(values);
  return args;
}

// One declaration per parameter: a default-constructed TrainConfig (what the trainer
// tests and benchmarks build on) holds the schema's defaults, and the options read from
// a node give the same configuration.
TEST(TrainParams, TrainConfigDefaultsAreTheSchemasDefaults) {
  const TrainConfig defaults;
  const TrainConfig from_schema = train_config(train_args({}));
  const PluginInfo plugin = train_plugin();
  const auto number = [&](const char* name) { return std::get<double>(*plugin.params.find(name)->default_value()); };
  EXPECT_EQ(defaults.label_smoothing, number("label_smoothing"));
  EXPECT_EQ(defaults.model.drop_path, number("drop_path"));
  EXPECT_EQ(defaults.lr, number("lr"));
  EXPECT_EQ(defaults.weight_decay, number("weight_decay"));
  EXPECT_EQ(defaults.precision, Precision::Fp32);  // auto on the CPU
  EXPECT_EQ(std::get<std::string>(*plugin.params.find("precision")->default_value()), "auto");
  EXPECT_EQ(defaults.model.describe(), from_schema.model.describe());
  EXPECT_EQ(defaults.label_smoothing, from_schema.label_smoothing);
  EXPECT_EQ(defaults.optimizer, from_schema.optimizer);
  EXPECT_EQ(defaults.schedule, from_schema.schedule);
  EXPECT_EQ(defaults.warmup_fraction, from_schema.warmup_fraction);
  EXPECT_FALSE(defaults.defer_reads);  // the unit tests' mode; the stage defers
  EXPECT_TRUE(from_schema.defer_reads);
  // Parameters arrive grouped, as `flowrun plugins train` lists them.
  EXPECT_EQ(plugin.params.find("lr")->group(), "Optimizer");
  EXPECT_EQ(plugin.params.find("save_every_steps")->group(), "Checkpoints and early stopping");
}

// init auto: PyTorch's layer init for a model trained from scratch (it learns faster:
// docs/learning-quality.md), timm's (zero head) when weights are loaded over it.
TEST(TrainParams, InitAutoIsPytorchFromScratchAndTimmWithPretrainedWeights) {
  EXPECT_EQ(train_config(train_args({})).init, VitInit::Pytorch);
  EXPECT_EQ(train_config(train_args({{"pretrained", std::string("weights.safetensors")}})).init, VitInit::Timm);
  EXPECT_EQ(train_config(train_args({{"init", std::string("timm")}})).init, VitInit::Timm);
  EXPECT_EQ(train_config(train_args({{"init", std::string("pytorch")}, {"pretrained", std::string("w.safetensors")}})).init,
            VitInit::Pytorch);
}

}  // namespace
}  // namespace flowrun::testing
