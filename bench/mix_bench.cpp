// Per-batch cost of a batch stage, called as a pipeline calls it (the registered
// plugin, its own draws), on synthetic batches (N, 3, S, S) already on the device:
// the figure bench/batch_augment_bench.py sets beside timm's Mixup on the same
// shape and beside the train step's time.
//
//   flowrun_mix_bench [--plugin mixup_cutmix] [--params '{"mode": "batch"}'] [--batch 128] [--size 32]
//                     [--dtype float|uint8] [--batches 200] [--threads 2] [--device cpu|cuda]
// Prints one JSON line: {"plugin": ..., "ms_per_batch": median, ...}.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "flowrun/description.hpp"
#include "flowrun/memory.hpp"
#include "flowrun/registry.hpp"
#include "stages/builtin.hpp"
#include "stages/messages/batch.hpp"

namespace {

struct Options {
  std::string plugin = "mixup_cutmix";
  std::string params = "{}";
  int batch = 128;
  int size = 32;
  std::string dtype = "float";
  int batches = 200;
  int threads = 2;
  std::string device = "cpu";
};

struct Discard : flowrun::Emitter {
  std::shared_ptr<const flowrun::Payload> last;
  void emit(int, std::shared_ptr<const flowrun::Payload> payload, std::uint64_t, std::uint64_t, flowrun::Lease) override {
    last = std::move(payload);
  }
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "%s\nusage: flowrun_mix_bench [--plugin NAME] [--params JSON] [--batch N] [--size S] [--dtype float|uint8] "
               "[--batches N] [--threads N] [--device cpu|cuda]\n",
               why.c_str());
  std::exit(2);
}

int run(const Options& o) {
  flowrun::keep_freed_memory();
  at::set_num_threads(o.threads);
  flowrun::Registry registry;
  flowrun::register_builtin_stages(registry);
  const flowrun::PluginInfo* info = registry.find(o.plugin);
  if (!info) usage("no plugin " + o.plugin);
  flowrun::StageArgs args;
  args.node_id = "mix";
  args.params = flowrun::validate_params(*info, nlohmann::json::parse(o.params), o.plugin);
  args.device = o.device;
  args.random = flowrun::RandomStreams(0, args.node_id);
  auto stage = info->create(args);
  auto& ordered = dynamic_cast<flowrun::OrderedStage&>(*stage);
  const auto options = at::TensorOptions().device(o.device);
  at::Tensor images = o.dtype == "uint8" ? at::randint(0, 256, {o.batch, 3, o.size, o.size}, options.dtype(at::kByte))
                                         : at::randn({o.batch, 3, o.size, o.size}, options);
  at::Tensor labels = at::randint(0, 10, {o.batch}, options.dtype(at::kLong));
  at::Tensor indices = at::arange(o.batch, at::TensorOptions().dtype(at::kLong));
  auto dataset = std::make_shared<flowrun::DatasetInfo>(flowrun::DatasetInfo{"data", std::vector<std::string>(10, "c"), 50000, 1});
  std::vector<double> ms;
  Discard out;
  const int warmup = 5;
  for (int i = 0; i < warmup + o.batches; ++i) {
    auto batch = std::make_shared<flowrun::Batch>();
    batch->images = images;
    batch->labels = labels;
    batch->indices = indices;
    batch->dataset = dataset;
    batch->step = static_cast<std::uint64_t>(i);
    flowrun::Message m;
    m.payload = batch;
    m.index = batch->step;
    const auto t0 = std::chrono::steady_clock::now();
    ordered.process(m, out);
    if (o.device != "cpu") {  // count the device's work, not only its launch
      const auto& b = dynamic_cast<const flowrun::Batch&>(*out.last);
      b.images.sum().item<double>();
    }
    const double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (i >= warmup) ms.push_back(elapsed);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("{\"plugin\": \"%s\", \"params\": %s, \"batch\": %d, \"size\": %d, \"dtype\": \"%s\", \"threads\": %d, "
              "\"device\": \"%s\", \"batches\": %d, \"ms_per_batch\": %.4f, \"p90_ms\": %.4f}\n",
              o.plugin.c_str(), nlohmann::json::parse(o.params).dump().c_str(), o.batch, o.size, o.dtype.c_str(), o.threads,
              o.device.c_str(), o.batches, ms[ms.size() / 2], ms[ms.size() * 9 / 10]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage("missing value after " + a);
    const std::string v = argv[++i];
    if (a == "--plugin") o.plugin = v;
    else if (a == "--params") o.params = v;
    else if (a == "--batch") o.batch = std::atoi(v.c_str());
    else if (a == "--size") o.size = std::atoi(v.c_str());
    else if (a == "--dtype") o.dtype = v;
    else if (a == "--batches") o.batches = std::atoi(v.c_str());
    else if (a == "--threads") o.threads = std::atoi(v.c_str());
    else if (a == "--device") o.device = v;
    else usage("unknown option " + a);
  }
  if (o.batch < 1 || o.size < 1 || o.batches < 1) usage("--batch, --size and --batches must be >= 1");
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowrun_mix_bench: %s\n", std::string(e.what()).substr(0, std::string(e.what()).find('\n')).c_str());
    return 1;
  }
}
