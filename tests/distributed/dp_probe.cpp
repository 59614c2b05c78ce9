// One rank of a data-parallel check, started N times by tests/distributed/test_distributed.cpp
// (through LocalLaunch, so with torchrun's variables). Each mode checks its own results and
// exits 0 only when they hold; what it saw goes to stdout for the test's failure message.
//   collectives  all-reduce (sum, max), broadcast, barrier, gathered text
//   gradients    GradientSync against the gradient of the whole batch computed alone,
//                with and without accumulation, in buckets small enough to need several
//   lost         rank 1 dies (SIGKILL) before an all-reduce; rank 0 must fail naming it
//   hung         rank 1 stops (SIGSTOP: alive, silent) before an all-reduce; rank 0 must
//                fail after the collective timeout (argv[2] seconds), naming it
//   nccl         on cuda:LOCAL_RANK through NCCL (any world size, 1 included: the device
//                check on a one-GPU machine): all-reduce, broadcast, averaged gradients
#include <torch/torch.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "lib/distributed/gradient_sync.hpp"
#include "lib/distributed/process_group.hpp"

using namespace flowrun;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << std::endl;
  if (!ok) ++failures;
}

bool close(const torch::Tensor& a, const torch::Tensor& b) { return torch::allclose(a, b, 1e-5, 1e-6); }

void collectives(DataParallelGroup& group) {
  const int rank = group.rank(), world = group.size();
  torch::Tensor sum = torch::full({5}, double(rank + 1), torch::kFloat64);
  group.all_reduce_sum(sum);
  expect(sum.eq(world * (world + 1) / 2.0).all().item<bool>(), "all-reduce sum = " + std::to_string(sum[0].item<double>()));
  torch::Tensor max = torch::tensor({std::int64_t(rank) * 10});
  group.all_reduce_max(max);
  expect(max.item<std::int64_t>() == (world - 1) * 10, "all-reduce max = " + std::to_string(max.item<std::int64_t>()));
  torch::Tensor b = torch::full({3, 2}, float(rank + 7));
  group.broadcast(b, 0);
  expect(b.eq(7.0f).all().item<bool>(), "broadcast from rank 0");
  group.barrier();
  const auto texts = group.all_gather_text("hello", "from " + std::to_string(rank));
  bool ok = static_cast<int>(texts.size()) == world;
  for (int r = 0; ok && r < world; ++r) ok = texts[static_cast<std::size_t>(r)] == "from " + std::to_string(r);
  expect(ok, "gathered text in rank order");
}

// A small MLP whose parameters span several 1 KB buckets.
torch::nn::Sequential make_model() {
  return torch::nn::Sequential(torch::nn::Linear(16, 32), torch::nn::Tanh(), torch::nn::Linear(32, 32), torch::nn::Tanh(),
                               torch::nn::Linear(32, 4));
}

torch::Tensor inputs_of(int rank, int micro) {
  torch::manual_seed(1000 + rank * 10 + micro);
  return torch::randn({8, 16});
}

void gradients(DataParallelGroup& group) {
  const int rank = group.rank(), world = group.size();
  torch::manual_seed(rank);  // different start on every rank: the broadcast must fix it
  auto model = make_model();
  std::vector<torch::Tensor> params;
  for (auto& p : model->parameters()) params.push_back(p);
  broadcast_from_rank0(group, params);
  torch::manual_seed(0);
  auto reference = make_model();  // rank 0's start, built alone
  for (std::size_t i = 0; i < params.size(); ++i)
    expect(torch::equal(params[i], reference->parameters()[i]), "parameter " + std::to_string(i) + " equals rank 0's");

  GradientSync sync(group, params, 1024);
  expect(sync.buckets() > 1, "several buckets: " + std::to_string(sync.buckets()));
  for (int accumulation : {1, 2}) {
    for (int step = 0; step < 2; ++step) {  // the second step runs after the Reducer re-buckets
      for (auto& p : params) p.mutable_grad() = torch::Tensor();
      for (auto& p : reference->parameters()) p.mutable_grad() = torch::Tensor();
      for (int micro = 0; micro < accumulation; ++micro) {
        const torch::Tensor loss = model->forward(inputs_of(rank, micro + step)).pow(2).mean() / accumulation;
        if (micro == accumulation - 1) sync.expect_backward(loss);
        loss.backward();
      }
      // Alone: the mean over ranks of each rank's accumulated gradient.
      for (int r = 0; r < world; ++r)
        for (int micro = 0; micro < accumulation; ++micro)
          (reference->forward(inputs_of(r, micro + step)).pow(2).mean() / (accumulation * world)).backward();
      bool ok = true;
      for (std::size_t i = 0; i < params.size(); ++i) ok = ok && close(params[i].grad(), reference->parameters()[i].grad());
      expect(ok, "averaged gradients equal the whole batch's (accumulation " + std::to_string(accumulation) +
                     ", step " + std::to_string(step) + ")");
    }
  }
}

void nccl(DataParallelGroup& group, const torch::Device& device) {
  const int rank = group.rank(), world = group.size();
  torch::Tensor sum = torch::full({1000}, float(rank + 1), torch::TensorOptions().device(device));
  group.all_reduce_sum(sum);
  expect(sum.eq(world * (world + 1) / 2.0f).all().item<bool>(), "NCCL all-reduce on " + device.str());
  torch::manual_seed(rank);
  auto model = make_model();
  model->to(device);
  std::vector<torch::Tensor> params = model->parameters();
  broadcast_from_rank0(group, params);
  torch::manual_seed(0);
  auto reference = make_model();
  reference->to(device);
  bool same = true;
  for (std::size_t i = 0; i < params.size(); ++i) same = same && torch::equal(params[i], reference->parameters()[i]);
  expect(same, "NCCL broadcast of the parameters");
  GradientSync sync(group, params, 1024);
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    for (auto& p : reference->parameters()) p.mutable_grad() = torch::Tensor();
    const torch::Tensor loss = model->forward(inputs_of(rank, step).to(device)).pow(2).mean();
    sync.expect_backward(loss);
    loss.backward();
    for (int r = 0; r < world; ++r) (reference->forward(inputs_of(r, step).to(device)).pow(2).mean() / world).backward();
    bool ok = true;
    for (std::size_t i = 0; i < params.size(); ++i) ok = ok && close(params[i].grad(), reference->parameters()[i].grad());
    expect(ok, "NCCL-averaged gradients equal the whole batch's (step " + std::to_string(step) + ")");
  }
}

void lost(DataParallelGroup& group, int sig) {
  // The launcher sends SIGTERM to the others once a rank died: ignore it here, to see
  // this rank find the loss by itself.
  std::signal(SIGTERM, SIG_IGN);
  group.barrier();
  if (group.rank() == 1) std::raise(sig);
  torch::Tensor t = torch::ones({4});
  try {
    group.all_reduce_sum(t);
    expect(false, "the all-reduce with a lost rank failed");
  } catch (const std::exception& e) {
    std::cout << "error: " << e.what() << std::endl;
    expect(std::string(e.what()).find("rank 1 did not answer") != std::string::npos, "the error names rank 1");
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  torch::set_num_threads(1);
  try {
    const ProcessPlacement placement = placement_from_environment();
    std::cout << placement.describe() << std::endl;
    const int timeout_s = argc > 2 ? std::atoi(argv[2]) : 20;
    const std::string device = mode == "nccl" ? "cuda:" + std::to_string(placement.local_rank) : "cpu";
    auto group = DataParallelGroup::connect(placement, device, std::chrono::seconds(timeout_s));
    if (mode == "collectives") collectives(*group);
    else if (mode == "gradients") gradients(*group);
    else if (mode == "lost") lost(*group, SIGKILL);
    else if (mode == "nccl") nccl(*group, torch::Device(device));
    else if (mode == "hung") {
      lost(*group, SIGSTOP);
      // As a run would: the job failed, so this rank ends non-zero and the launcher
      // ends the silent one.
      return failures == 0 ? 3 : 1;
    }
    else {
      std::cerr << "usage: dp_probe collectives|gradients|lost|hung|nccl [TIMEOUT_S]" << std::endl;
      return 2;
    }
  } catch (const std::exception& e) {
    std::cout << "FAIL exception: " << e.what() << std::endl;
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
