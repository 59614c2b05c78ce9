// Loader throughput: runs a data-path description (default pipelines/cifar10_loader.json:
// tar -> jpeg_decode -> random_crop -> horizontal_flip -> normalize -> batch -> discard)
// several times and prints the median images/s and the process's peak resident
// memory; or, with --decode-only, the rate of bare TurboJPEG decoding of the same
// files on the same number of threads (the ceiling a loader can approach); or, with
// --interleave-decode-only, both alternately and the median of the per-round ratios.
// bench/compare_loaders.py runs it beside torchvision's DataLoader and prints ratios.
//
//   flowrun_loader_bench --tar ../shared/data/cifar10-jpeg.tar --threads 2 [--limit 500] [--repeat 5]
#include <sys/resource.h>
#include <turbojpeg.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/memory.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/pipeline.hpp"
#include "flowrun/registry.hpp"
#include "stages/builtin.hpp"
#include "stages/sources/tar_archive.hpp"

namespace {

struct Options {
  std::string pipeline = FLOWRUN_SOURCE_DIR "/pipelines/cifar10_loader.json";
  std::string tar = FLOWRUN_SOURCE_DIR "/../shared/data/cifar10-jpeg.tar";
  std::string prefix = "train/";
  int threads = 2;
  int repeat = 5;
  int limit = 0;  // per class; 0 = all
  bool decode_only = false;
  bool interleave_decode = false;  // alternate pipeline and decode-only runs, print the ratio
  std::vector<std::string> sets;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Resident memory right now (VmRSS), to tell the libraries' share from the loader's.
double current_rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::atof(line + 6);
  std::fclose(f);
  return kb / 1024.0;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

struct PipelinePass {
  std::uint64_t images = 0;
  double seconds = 0;        // the whole run, the source's start (indexing the tar) included
  double start_seconds = 0;  // of which starting the stages
};

// One pass of the pipeline over the data.
PipelinePass pipeline_once(const Options& o) {
  {
    flowrun::Registry registry;
    flowrun::register_builtin_stages(registry);
    flowrun::PackLoader loader;
    std::vector<std::string> sets = {"nodes.train.params.paths=[\"" + o.tar + "\"]",
                                     "threads=" + std::to_string(o.threads),
                                     "nodes.train.params.per_class_limit=" + std::to_string(o.limit)};
    sets.insert(sets.end(), o.sets.begin(), o.sets.end());
    flowrun::Pipeline pipeline(flowrun::load_description(o.pipeline, sets, registry, loader));
    const flowrun::RunReport report = pipeline.run();
    return {report.nodes.front().items, report.seconds, report.start_seconds};
  }
}

double decode_only_once(const Options& o);

void run_pipeline(const Options& o, double baseline_rss) {
  // Two rates per pass: the whole run, and streaming (after the source's start) as the
  // bare decode below and torchvision's DataLoader in compare_loaders.py are timed: both
  // list their files before the clock starts.
  std::vector<double> rates, seconds, starts, streaming_rates, decode_rates, ratios, streaming_ratios;
  std::uint64_t images = 0;
  for (int r = 0; r < o.repeat; ++r) {
    const PipelinePass pass = pipeline_once(o);
    images = pass.images;
    seconds.push_back(pass.seconds);
    starts.push_back(pass.start_seconds);
    rates.push_back(static_cast<double>(pass.images) / pass.seconds);
    streaming_rates.push_back(static_cast<double>(pass.images) / (pass.seconds - pass.start_seconds));
    if (o.interleave_decode) {
      // Alternating with the ceiling makes each ratio compare runs seconds apart: this
      // VM's speed drifts by tens of percent over minutes.
      decode_rates.push_back(decode_only_once(o));
      ratios.push_back(rates.back() / decode_rates.back());
      streaming_ratios.push_back(streaming_rates.back() / decode_rates.back());
    }
  }
  const auto print_ratio = [](const char* name, const std::vector<double>& v) {
    std::printf("%s median=%.3f min=%.3f max=%.3f\n", name, median(v), *std::min_element(v.begin(), v.end()),
                *std::max_element(v.begin(), v.end()));
  };
  if (o.interleave_decode) {
    std::printf("turbojpeg_decode_only threads=%d runs=%d images_per_s=%.0f\n", o.threads, o.repeat,
                median(decode_rates));
    print_ratio("ratio_to_decode_only", ratios);
    print_ratio("streaming_ratio_to_decode_only", streaming_ratios);
  }
  std::printf(
      "flowrun_pipeline threads=%d images=%llu runs=%d median_s=%.3f images_per_s=%.0f start_s=%.3f "
      "streaming_images_per_s=%.0f peak_rss_mb=%.1f baseline_rss_mb=%.1f\n",
      o.threads, static_cast<unsigned long long>(images), o.repeat, median(seconds), median(rates), median(starts),
      median(streaming_rates), peak_rss_mb(), baseline_rss);
}

// Bare TurboJPEG: each thread decodes a strided share into its own reused buffer.
// Returns images/s of one pass.
double decode_only_once(const Options& o) {
  static const auto tar = flowrun::TarArchive::open(o.tar);
  static std::vector<const flowrun::TarArchive::Member*> files = [&] {
    std::vector<const flowrun::TarArchive::Member*> list;
    for (const auto& m : tar->members())
      if (m.name.compare(0, o.prefix.size(), o.prefix) == 0) list.push_back(&m);
    return list;
  }();
  std::atomic<int> failures{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      tjhandle tj = tjInitDecompress();
      std::vector<unsigned char> buffer;
      for (std::size_t i = static_cast<std::size_t>(t); i < files.size(); i += static_cast<std::size_t>(o.threads)) {
        const auto& m = *files[i];
        int w = 0, h = 0, sub = 0, cs = 0;
        if (tjDecompressHeader3(tj, tar->data(m), m.size, &w, &h, &sub, &cs) != 0) {
          ++failures;
          continue;
        }
        buffer.resize(static_cast<std::size_t>(w) * h * 3);
        if (tjDecompress2(tj, tar->data(m), m.size, buffer.data(), w, 0, h, TJPF_RGB, 0) != 0) ++failures;
      }
      tjDestroy(tj);
    });
  }
  for (auto& w : workers) w.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failures) std::fprintf(stderr, "%d files failed to decode\n", failures.load());
  return static_cast<double>(files.size()) / s;
}

void run_decode_only(const Options& o) {
  std::vector<double> rates;
  for (int r = 0; r < o.repeat; ++r) rates.push_back(decode_only_once(o));
  std::printf("turbojpeg_decode_only threads=%d runs=%d images_per_s=%.0f\n", o.threads, o.repeat, median(rates));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--pipeline") o.pipeline = value();
    else if (a == "--tar") o.tar = value();
    else if (a == "--threads") o.threads = std::stoi(value());
    else if (a == "--repeat") o.repeat = std::stoi(value());
    else if (a == "--limit") o.limit = std::stoi(value());
    else if (a == "--set") o.sets.push_back(value());
    else if (a == "--decode-only") o.decode_only = true;
    else if (a == "--interleave-decode-only") o.interleave_decode = true;
    else {
      std::fprintf(stderr,
                   "usage: flowrun_loader_bench [--pipeline P.json] [--tar T] [--threads N] [--repeat R] "
                   "[--limit PER_CLASS] [--set PATH=VALUE]... [--decode-only | --interleave-decode-only]\n");
      return 2;
    }
  }
  const double baseline_rss = current_rss_mb();  // LibTorch and the other libraries, loaded
  flowrun::configure_logging("warn");
  if (!std::getenv("FLOWRUN_DEFAULT_MALLOC")) flowrun::keep_freed_memory();
  try {
    if (o.decode_only) run_decode_only(o);
    else run_pipeline(o, baseline_rss);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flowrun_loader_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
