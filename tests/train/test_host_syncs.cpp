// No host sync per training step, in a whole run: the shipped ViT pipeline's CUDA chain
// (to_device, the batch crop and normalization, the train stage with its label check
// and deferred reads, an evaluation per epoch) run twice under --warn-host-syncs, with
// twice the steps the second time. Log steps, evaluations and the run's start and end
// may wait for the GPU; a training step may not, so the count of waits must not grow
// with the steps. The trainer-level test (TrainingStepsNeverSynchroniseTheHost) turns
// any sync into an error; this one covers the stages around it. What c10's mode counts:
// item(), copies to the host, stream syncs; not event waits (the deferred reads').
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

// The shipped ViT-B/16 pipeline shrunk to the micro ViT at 32 px, `per_class` training
// images a class for 2 epochs (batches of 32), 8 test images a class, nothing saved.
// The label check watches the second epoch (a model this young suspects no sample, so
// no thumbnail is taken: TrainingStepsNeverSynchroniseTheHost covers those).
std::vector<std::string> small_vit_run(const std::string& run_dir, const std::string& device, int per_class) {
  const std::string tar = "[\"" + source_dir() + "/../shared/data/cifar10-jpeg.tar\"]";
  return {source_dir() + "/pipelines/vit_cifar10_fullft.json", "--warn-host-syncs", "--run-dir", run_dir,
          "--set", "device=" + device,
          "--set", "nodes.train.params.model=vit_cifar_micro", "--set", "nodes.train.params.pretrained=\"\"",
          "--set", "nodes.train.params.layer_norm_eps=1e-6", "--set", "nodes.train.params.log_every=1000",
          "--set", "nodes.train.params.save_every_epochs=0",
          "--set", "nodes.crop.params.size=[32]", "--set", "nodes.test_resize.params.size=[32]",
          "--set", "nodes.train_data.params.paths=" + tar, "--set", "nodes.test_data.params.paths=" + tar,
          "--set", "nodes.train_data.params.epochs=2", "--set", "nodes.test_data.params.epochs=2",
          "--set", "nodes.train_data.params.per_class_limit=" + std::to_string(per_class),
          "--set", "nodes.test_data.params.per_class_limit=8",
          "--set", "nodes.batch.params.batch_size=32",
          "--set", "nodes.checkpoint.plugin=discard", "--set", "nodes.checkpoint.params={}"};
}

std::size_t host_syncs(const std::string& err) {
  std::size_t n = 0;
  for (std::size_t at = err.find("synchronizing CUDA operation"); at != std::string::npos;
       at = err.find("synchronizing CUDA operation", at + 1))
    ++n;
  return n;
}

TEST(HostSyncs, TrainingOnCudaWaitsForTheGpuNoMoreOftenForMoreSteps) {
  if (!has_nvidia_device())
    GTEST_SKIP() << "no GPU here (no /dev/nvidiaN); bench/device_check.sh runs this case on one";
  TempDir dir;
  const auto few = run_flowrun(small_vit_run(dir.path() + "/few", "cuda", 16), -1, SIGINT, 180);  // 5 steps an epoch
  ASSERT_EQ(few.exit_code, 0) << few.err;
  const auto more = run_flowrun(small_vit_run(dir.path() + "/more", "cuda", 32), -1, SIGINT, 180);  // 10
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_NE(few.out.find("--warn-host-syncs: every call"), std::string::npos) << few.out;  // an info line: stdout
  // Evaluations read their outcomes on the host: some waits are seen, so the mode is on.
  EXPECT_GT(host_syncs(few.err), 0u) << few.err;
  const auto extra = static_cast<long>(host_syncs(more.err)) - static_cast<long>(host_syncs(few.err));
  EXPECT_EQ(extra, 0) << "10 more training steps made the host wait " << extra << " more times:\n" << more.err;
}

// The flag on the CPU: the run goes on, saying that there is nothing to report.
TEST(HostSyncs, WarnHostSyncsOnTheCpuSaysItHasNothingToReport) {
  TempDir dir;
  const auto r = run_flowrun(small_vit_run(dir.path() + "/cpu", "cpu", 4), -1, SIGINT, 180);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("--warn-host-syncs: the run's device is cpu"), std::string::npos) << r.err;
  EXPECT_EQ(host_syncs(r.err), 0u);
}

}  // namespace
}  // namespace flowrun::testing
