// Time of one all-reduce (sum, float32) across data-parallel ranks on this machine,
// through flowrun's process group (c10d's TCPStore + Gloo, as a run uses it), for a
// few sizes: 4 KB, 256 KB, the quickstart ViT's gradients (0.46 M parameters, 1.85 MB:
// one bucket per step) and one full 25 MB bucket.
//
//   build/flowrun_allreduce_bench [--nproc 2] [--reps 50]
// Starts the ranks itself (LocalLaunch, the launcher hosting the store) and prints one
// JSON line per size from rank 0: {"bytes", "ms_median", "ms_p90", "algbw_GBps"}.
// bench/data_parallel_scaling.py runs it beside torch.distributed doing the same.
#include <ATen/Parallel.h>
#include <torch/types.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/distributed/local_launch.hpp"
#include "lib/distributed/process_group.hpp"

using namespace flowrun;

namespace {

int as_rank(int reps) {
  at::set_num_threads(1);
  auto group = DataParallelGroup::connect(placement_from_environment(), "cpu", std::chrono::seconds(60));
  for (std::int64_t bytes : {4LL << 10, 256LL << 10, 462538LL * 4, 25LL << 20}) {
    torch::Tensor t = torch::ones({bytes / 4}, torch::kFloat);
    for (int w = 0; w < 5; ++w) group->all_reduce_sum(t);  // warm-up: connections, buffers
    std::vector<double> ms;
    for (int r = 0; r < reps; ++r) {
      group->barrier();
      const auto t0 = std::chrono::steady_clock::now();
      group->all_reduce_sum(t);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2], p90 = ms[ms.size() * 9 / 10];
    if (group->rank() == 0)
      std::printf("{\"tool\": \"flowrun\", \"ranks\": %d, \"bytes\": %lld, \"ms_median\": %.4f, \"ms_p90\": %.4f, "
                  "\"algbw_GBps\": %.3f}\n",
                  group->size(), static_cast<long long>(bytes), median, p90, static_cast<double>(bytes) / median / 1e6);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int nproc = 2, reps = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--nproc") nproc = std::atoi(argv[i + 1]);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
  }
  if (std::getenv("RANK") != nullptr) return as_rank(reps);
  RendezvousHost host("127.0.0.1", 0, nproc, std::chrono::seconds(60));
  LaunchPlan plan;
  plan.processes = nproc;
  plan.command = {"/proc/self/exe", "--nproc", std::to_string(nproc), "--reps", std::to_string(reps)};
  plan.master_port = host.port();
  plan.agent_store = true;
  LocalLaunch job(plan);
  job.start();
  return job.wait();
}
