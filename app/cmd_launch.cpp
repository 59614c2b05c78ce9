// flowrun launch --nproc N PIPELINE.json [run options]: a data-parallel job on this
// machine, as `torchrun --nproc-per-node N flowrun PIPELINE.json` would start it. The
// launcher hosts the rendezvous (a TCPStore on a free port, as torchrun's agent does),
// starts N `flowrun run` processes with torchrun's variables, forwards Ctrl-C/SIGTERM
// to them once, and ends the job when a rank fails, with that rank's exit code.
#include <csignal>
#include <thread>

#include "cli.hpp"
#include "flowrun/logging.hpp"
#include "lib/distributed/local_launch.hpp"
#include "lib/distributed/process_group.hpp"
#include "signals.hpp"

namespace flowrun::cli {
namespace {

struct LaunchArgs {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  std::string log_dir;
  int grace_s = 30;
  std::vector<std::string> run_args;  // PIPELINE.json and the options for `flowrun run`
};

int launch(const LaunchArgs& args) {
  if (args.run_args.empty()) throw UsageError("launch: no PIPELINE.json to run");
  // Each rank gets an equal share of the cores for its compute threads (torchrun sets
  // OMP_NUM_THREADS=1), unless the environment says otherwise.
  LaunchPlan plan;
  plan.processes = args.nproc;
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    plan.environment["OMP_NUM_THREADS"] = std::to_string(std::max(1u, cores / static_cast<unsigned>(args.nproc)));
  }
  RendezvousHost host(args.master_addr, args.master_port, args.nproc, std::chrono::seconds(60));
  plan.master_addr = args.master_addr;
  plan.master_port = host.port();
  plan.agent_store = true;
  plan.log_folder = args.log_dir;
  plan.grace = std::chrono::seconds(args.grace_s);
  plan.command = {self_executable(), "run"};
  plan.command.insert(plan.command.end(), args.run_args.begin(), args.run_args.end());
  log::info("launch: ", args.nproc, " ranks of `flowrun run ", args.run_args.front(), " ...`, rendezvous ",
            args.master_addr, ":", plan.master_port,
            plan.environment.count("OMP_NUM_THREADS") ? ", OMP_NUM_THREADS=" + plan.environment["OMP_NUM_THREADS"] : "",
            args.log_dir.empty() ? "" : ", logs in " + args.log_dir + "/rankN.log");
  LocalLaunch job(plan);
  SignalWatcher watcher(
      [&](int sig) {
        log::warn("launch: ", sig == SIGINT ? "SIGINT" : "SIGTERM", " received: passed on to every rank (again to abort)");
        job.forward(sig);
      },
      [&](int sig) { job.forward(sig); });
  job.start();
  const int code = job.wait([](const std::string& line) { log::info("launch: ", line); });
  if (code == 0) log::info("launch: every rank finished");
  else if (job.first_failed_rank() < 0) log::info("launch: every rank stopped as asked");
  else log::error("launch: the job failed: ", job.outcomes()[static_cast<std::size_t>(job.first_failed_rank())].describe());
  return code;
}

}  // namespace

void add_launch_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<LaunchArgs>();
  CLI::App* command = app.add_subcommand(
      "launch", "run a pipeline data-parallel in N local processes (as torchrun --nproc-per-node N would)");
  command->footer(
      "Usage: flowrun launch [--nproc N] [launch options] PIPELINE.json [flowrun run options]\n"
      "\n"
      "Starts N `flowrun run PIPELINE.json [options]` processes, ranks 0..N-1, with torchrun's variables\n"
      "(RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT,\n"
      "TORCHELASTIC_USE_AGENT_STORE=True); the launcher hosts the rendezvous store. Everything after\n"
      "PIPELINE.json goes to `flowrun run` (--set, --resume, --run-dir, --dist-timeout...).\n"
      "Each rank trains on its share of every epoch (the global batch is batch_size x N), gradients\n"
      "are averaged across ranks (Gloo on the CPU; NCCL on CUDA, rank N on cuda:N), rank 0 writes\n"
      "the run folder. Lines of ranks other than 0 appear as \"[rank N] ...\" (warnings only, unless\n"
      "--log-level says more). OMP_NUM_THREADS defaults to cores / N.\n"
      "Ctrl-C or SIGTERM is passed to every rank once: they stop after the same step and rank 0\n"
      "saves a checkpoint; a second one aborts. When a rank fails or dies, the others are stopped\n"
      "(SIGTERM, then SIGKILL after --grace) and the launcher exits with the failed rank's code.\n"
      "\n"
      "Example: flowrun launch --nproc 2 pipelines/quickstart.json --set nodes.batch.params.batch_size=64");
  command->add_option("--nproc", args->nproc, "processes (ranks) to start")->check(CLI::Range(1, 1024));
  command->add_option("--master-addr", args->master_addr, "address the rendezvous store listens on")
      ->type_name("ADDR");
  command->add_option("--master-port", args->master_port, "its port; 0 = a free one")->check(CLI::Range(0, 65535));
  command->add_option("--log-dir", args->log_dir, "write each rank's output to DIR/rankN.log instead")->type_name("DIR");
  command->add_option("--grace", args->grace_s, "seconds the other ranks get to stop after one failed, before SIGKILL")
      ->check(CLI::Range(0, 3600));
  add_log_level(*command, context);
  // Everything from PIPELINE.json on is the ranks' (CLI11 leaves it in remaining()).
  command->prefix_command();
  command->callback([&context, args, command] {
    args->run_args = command->remaining();
    context.action = [args] { return launch(*args); };
  });
}

}  // namespace flowrun::cli
