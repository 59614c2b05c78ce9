#include "stages/train/step_rate.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <vector>

#include "stages/train/train_params.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {

StepRate measure_step_rate(const StageArgs& train_node, int batch, int steps, int warmup) {
  TrainConfig config = train_config(train_node);
  if (config.model.num_classes == 0) config.model.num_classes = 10;
  config.pretrained.clear();  // random weights run the same step
  const int threads = read_options<TrainOptions>(train_node.params).threads;
  if (threads > 0) torch::set_num_threads(threads);
  Trainer trainer(config);
  trainer.set_total_steps(warmup + steps);
  const int side = config.model.image_size;
  const auto images = config.mean.empty() ? torch::randn({batch, 3, side, side})
                                          : torch::randint(0, 256, {batch, 3, side, side}, torch::kUInt8);
  const auto labels = torch::randint(0, config.model.num_classes, {batch}, torch::kLong);
  std::vector<double> seconds;
  std::deque<StepStats> pending;
  for (int i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int micro = 0; micro < config.accumulation; ++micro) pending.push_back(trainer.train_batch(images, labels, {}, 0));
    while (pending.size() > 2) {
      trainer.read_stats(pending.front());
      pending.pop_front();
    }
    if (i >= warmup) seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  while (!pending.empty()) {
    trainer.read_stats(pending.front());
    pending.pop_front();
  }
  std::sort(seconds.begin(), seconds.end());
  StepRate r;
  r.batch = batch * config.accumulation;
  r.median_step_s = seconds.empty() ? 0 : seconds[seconds.size() / 2];
  r.images_per_s = r.median_step_s > 0 ? r.batch / r.median_step_s : 0;
  r.threads = torch::get_num_threads();
  r.model = config.model.describe();
  return r;
}

}  // namespace flowrun
