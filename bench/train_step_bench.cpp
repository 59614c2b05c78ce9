// Train-step throughput of flowrun's ViT on synthetic batches (no loading): the
// figure bench/compare_train_step.py sets beside the same step in PyTorch-Python.
// The step is the train stage's own (Trainer::train_batch: forward, label-smoothed
// cross-entropy, backward, gradient-norm measurement and clipping, AdamW with the
// stage's parameter groups), with the process set up as the flowrun binary sets it
// up (keep_freed_memory, thread count).
//
//   flowrun_train_step_bench --model vit_cifar_micro --batch 128 --steps 20 [--threads 2]
//                            [--precision fp32|bf16] [--image-size N] [--malloc keep|glibc]
//                            [--on worker|main] [--profile TRACE.json] [--device cpu|cuda]
// The synthetic batch is made on the device once, so that the figure is the step's alone.
// Prints one JSON line: {"model": ..., "images_per_s": median, "step_ms": [...]}.
// --profile: after the timed steps, 3 more under LibTorch's profiler, saved as a
// Chrome trace (bench/profile_train_step.py compares it op by op with Python's).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/autograd/profiler_kineto.h>

#include "flowrun/memory.hpp"
#include "stages/train/trainer.hpp"

namespace {

struct Options {
  std::string model = "vit_cifar_micro";
  int batch = 128;
  int steps = 20;
  int warmup = 3;
  int threads = 0;
  int image_size = 0;
  std::string precision = "fp32";
  bool keep_freed_memory = true;  // --malloc glibc: leave glibc's defaults, to measure the setting
  bool on_main_thread = false;    // --on main: the process's first thread (default: a worker, as in a pipeline)
  std::string profile;            // Chrome trace of 3 extra steps, or "" for none
  std::string device = "cpu";     // the batches start on the CPU and are copied, as in a pipeline
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "%s\nusage: flowrun_train_step_bench [--model PRESET] [--batch N] [--steps N] [--warmup N] "
               "[--threads N] [--precision fp32|bf16] [--image-size N] [--malloc keep|glibc] [--on worker|main] "
               "[--profile TRACE.json] [--device cpu|cuda]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(("missing value after " + a).c_str());
    const char* v = argv[++i];
    if (a == "--model") o.model = v;
    else if (a == "--batch") o.batch = std::atoi(v);
    else if (a == "--steps") o.steps = std::atoi(v);
    else if (a == "--warmup") o.warmup = std::atoi(v);
    else if (a == "--threads") o.threads = std::atoi(v);
    else if (a == "--image-size") o.image_size = std::atoi(v);
    else if (a == "--precision") o.precision = v;
    else if (a == "--malloc") o.keep_freed_memory = std::string(v) != "glibc";
    else if (a == "--on") o.on_main_thread = std::string(v) == "main";
    else if (a == "--profile") o.profile = v;
    else if (a == "--device") o.device = v;
    else usage(("unknown option " + a).c_str());
  }
  if (o.batch < 1 || o.steps < 1) usage("--batch and --steps must be >= 1");
  return o;
}

void run(const Options& o) {
  if (o.keep_freed_memory) flowrun::keep_freed_memory();  // as the flowrun binary does
  if (o.threads > 0) torch::set_num_threads(o.threads);
  flowrun::TrainConfig c;
  c.model = flowrun::vit_preset(o.model);
  if (o.image_size > 0) c.model.image_size = o.image_size;
  c.model.num_classes = 10;
  c.model.drop_path = 0.1;
  c.label_smoothing = 0.1;
  c.clip_grad_norm = 1.0;
  c.precision = flowrun::precision_from_name(o.precision);
  c.device = o.device;
  c.defer_reads = true;  // as the train stage runs it: no host read inside the step
  flowrun::Trainer trainer(c);
  trainer.set_total_steps(o.warmup + o.steps);
  const int side = c.model.image_size;
  // The batch lives on the device from the start: the step alone, without a host-to-device
  // copy of a pageable float batch every step (the pipeline's to_device overlaps that copy).
  const torch::Device device(o.device);
  torch::Tensor images = torch::randn({o.batch, 3, side, side}).to(device);
  torch::Tensor labels = torch::randint(0, 10, {o.batch}, torch::kLong).to(device);
  std::vector<double> ms;
  std::deque<flowrun::StepStats> pending;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    pending.push_back(trainer.train_batch(images, labels, {}, 0));
    while (pending.size() > 2) {  // read two steps behind, as the train stage does (on CUDA: the step's real pace)
      trainer.read_stats(pending.front());
      pending.pop_front();
    }
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= o.warmup) ms.push_back(elapsed);
  }
  if (!o.profile.empty()) {
    namespace prof = torch::autograd::profiler;
    const prof::ProfilerConfig config(prof::ProfilerState::KINETO);
    const std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
    prof::prepareProfiler(config, activities);
    prof::enableProfiler(config, activities);
    for (int i = 0; i < 3; ++i) trainer.train_batch(images, labels, {}, 0);
    prof::disableProfiler()->save(o.profile);
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double median_ms = sorted[sorted.size() / 2];
  std::printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"device\": \"%s\", \"precision\": \"%s\", "
              "\"images_per_s\": %.2f, \"step_ms\": [",
              o.model.c_str(), o.batch, torch::get_num_threads(), o.device.c_str(), o.precision.c_str(),
              o.batch * 1000.0 / median_ms);
  for (std::size_t i = 0; i < ms.size(); ++i) std::printf("%s%.1f", i ? ", " : "", ms[i]);
  std::printf("]}\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::string error;
  auto guarded = [&] {
    try {
      run(o);
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  // In a pipeline the train stage runs on a TBB worker thread, whose malloc arena is
  // not the main thread's; run the loop on a thread of its own to measure the same.
  if (o.on_main_thread) {
    guarded();
  } else {
    std::thread worker(guarded);
    worker.join();
  }
  if (!error.empty()) {
    std::fprintf(stderr, "flowrun_train_step_bench (device %s): %s\n", o.device.c_str(),
                 error.substr(0, error.find('\n')).c_str());
    return 1;
  }
  return 0;
}
