// flowrun run (the default command): check the description, then run it in a run
// folder, resuming from a checkpoint when asked; Ctrl-C and SIGTERM stop cleanly.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "cli.hpp"
#include "data_parallel.hpp"
#include "device.hpp"
#include "execute.hpp"
#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/pipeline.hpp"
#include "run_summary.hpp"
#include "signals.hpp"
#include "stages/checkpoint/checkpoint_file.hpp"
#include "stages/checkpoint/checkpoint_plugins.hpp"

namespace flowrun::cli {
namespace {

struct RunArgs {
  std::string pipeline;
  std::vector<std::string> overrides;
  std::string resume;
  std::string run_dir;
  std::string profile;
  int dist_timeout_s = 300;
  bool warn_host_syncs = false;
};

namespace fs = std::filesystem;

// --resume auto: the most recently written checkpoint of any runs/NAME-* folder.
std::string find_auto_checkpoint(const std::string& name) {
  std::string best;
  fs::file_time_type best_time{};
  std::error_code ec;
  for (const auto& run : fs::directory_iterator("runs", ec)) {
    const std::string folder = run.path().filename().string();
    if (folder != name && folder.rfind(name + "-", 0) != 0) continue;
    const std::string newest = newest_checkpoint(default_checkpoint_folder(run.path().string()));
    if (newest.empty()) continue;
    const auto time = fs::last_write_time(newest, ec);
    if (best.empty() || time > best_time) {
      best = newest;
      best_time = time;
    }
  }
  if (best.empty()) throw UsageError("--resume auto: no checkpoint under runs/" + name + "-*/checkpoints/");
  return best;
}

// The run folder a checkpoint belongs to: the folder above its checkpoints/.
std::string run_folder_of(const std::string& checkpoint) {
  const fs::path folder = fs::absolute(checkpoint).parent_path();
  return folder.filename() == "checkpoints" ? folder.parent_path().string() : folder.string();
}

int run_pipeline(Context& context, const RunArgs& args) {
  const ProcessPlacement placement = read_placement();
  const bool writer = placement.rank == 0;
  if (!writer && context.log_level.empty()) configure_logging("warn");
  Description description = load_pipeline(context, args.pipeline, args.overrides);
  if (args.warn_host_syncs) {
    if (description.device.rfind("cuda", 0) != 0)
      log::warn("--warn-host-syncs: the run's device is ", description.device,
                ": a host sync is a CUDA notion, nothing will be reported");
    else if (!warn_on_host_syncs())
      log::warn("--warn-host-syncs: this build's LibTorch has no CUDA headers; nothing will be reported");
    else
      log::info("--warn-host-syncs: every call that makes the host wait for the GPU through c10 prints \"called a "
                "synchronizing CUDA operation\" on stderr (log steps, evaluations and checkpoints wait by design; "
                "training steps should not)");
  }
  // One rank of a data-parallel job: rank 0 writes (run folder, log file, checkpoints,
  // reports); the others log warnings only unless asked for more.
  const auto group = join_data_parallel(placement, description, std::chrono::seconds(args.dist_timeout_s));
  RunOptions options;
  std::string fresh_because;  // --resume auto --run-dir DIR found nothing in DIR
  if (args.resume == "auto" && !args.run_dir.empty()) {
    // The run folder was named: its own checkpoints only, never another run's.
    const std::string folder = default_checkpoint_folder(args.run_dir);
    options.resume_from = newest_checkpoint(folder);
    if (options.resume_from.empty()) fresh_because = "--resume auto: no checkpoint in " + folder + "/: starting a fresh run";
  } else if (args.resume == "auto") {
    options.resume_from = find_auto_checkpoint(description.name);
  } else {
    options.resume_from = args.resume;
  }
  if (!options.resume_from.empty()) {
    try {
      resume_from_checkpoint(options.resume_from, options);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--resume: ") + e.what());
    }
  }
  options.run_folder = !args.run_dir.empty()        ? args.run_dir
                       : !options.resume_from.empty() ? run_folder_of(options.resume_from)
                                                      : "runs/" + description.name + "-" + run_timestamp();
  if (group) {
    // Rank 0's clock names the folder; every rank must resume from the same checkpoint.
    options.run_folder = rank0_text(*group, "run_folder", options.run_folder);
    if (rank0_text(*group, "resume_from", options.resume_from) != options.resume_from)
      throw std::runtime_error("data-parallel: rank " + std::to_string(group->rank()) + " would resume from '" +
                               options.resume_from + "', rank 0 from another checkpoint: give every rank the same --resume");
  }
  return execute_pipeline(std::move(description), std::move(options),
                          {args.pipeline, group, writer, args.profile, fresh_because, true});
}

}  // namespace

int execute_pipeline(Description description, RunOptions options, const RunSetup& setup) {
  const bool writer = setup.writer;
  const auto& group = setup.group;
  const bool has_folder = !options.run_folder.empty();
  if (writer && has_folder) {
    fs::create_directories(options.run_folder);
    add_log_file((fs::path(options.run_folder) / "flowrun.log").string());
  }
  log::info("pipeline '", description.name, "': ", description.nodes.size(), " nodes, ", description.edges.size(),
            " edges, device ", description.device, ", seed ", description.seed);
  if (!options.resume_from.empty()) log::info("resuming from ", options.resume_from);
  if (!setup.note.empty()) log::info(setup.note);
  if (writer && has_folder) {
    write_file_atomically((fs::path(options.run_folder) / "pipeline.json").string(), description.resolved_json + "\n");
    log::info("run folder ", options.run_folder);
  }
  if (writer) options.profile_path = setup.profile;
  const std::string run_folder = options.run_folder;
  Pipeline pipeline(std::move(description), options);
  SignalWatcher watcher(
      [&](int sig) {
        if (group) {
          // Every rank must stop after the same step, or one would wait for the others'
          // gradients: the train stages agree on it at their next step.
          log::warn(sig == SIGINT ? "SIGINT" : "SIGTERM",
                    " received: the ranks stop after the next step they agree on (send again to abort at once)");
          group->request_stop();
          return;
        }
        log::warn(sig == SIGINT ? "SIGINT" : "SIGTERM",
                  " received: stopping (in-flight work is dropped; send again to abort at once)");
        pipeline.request_stop();
      },
      [&](int) {
        log::warn("second signal: aborting now");
        pipeline.cancel();
      });
  RunReport report;
  try {
    report = pipeline.run();
  } catch (const std::exception& e) {
    if (writer && has_folder)
      write_run_summary(run_folder, setup.pipeline_label, pipeline.description(), nullptr, e.what(), kExitFailed);
    throw;
  }
  log::clear_status();
  if (writer && setup.summary_table) print_report(pipeline.description(), report);
  if (!report.ended_by.empty()) log::info("the run was ended early by ", report.ended_by, ": ", report.ended_why);
  const int code = watcher.received() == SIGINT ? 130 : watcher.received() == SIGTERM ? 143 : kExitOk;
  if (writer && has_folder) write_run_summary(run_folder, setup.pipeline_label, pipeline.description(), &report, "", code);
  return code;
}

void add_run_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* command = app.add_subcommand("run", "check the description, then run it (the default: flowrun PIPELINE.json)");
  command->footer(
      "Checks the description (exit 2 on any problem, nothing written), builds the flow graph and\n"
      "runs it in a run folder (runs/NAME-YYYYmmdd-HHMMSS unless --run-dir; pipeline.json there\n"
      "is the description as run). Ctrl-C (SIGINT) or SIGTERM stops cleanly: sources end their\n"
      "streams, in-flight work is dropped, the train stage hands its last state to the checkpoint\n"
      "stage, which saves it; a second Ctrl-C aborts at once. A stage that throws ends the run with\n"
      "its node id, plugin and message (exit 1). Early stopping ends the run normally (exit 0).\n"
      "\n"
      "--resume CHECKPOINT.h5 continues a run from a checkpoint: weights, optimizer, schedule,\n"
      "generator states and each source's position in its epoch are restored, so the run ends with\n"
      "the same weights, bit for bit on the CPU, as one that was never stopped. --resume auto takes\n"
      "the newest checkpoint under runs/NAME-*/checkpoints/; with --run-dir DIR, the newest in\n"
      "DIR/checkpoints/ only, and a fresh run in DIR when there is none (it says which).\n"
      "\n"
      "\n"
      "Data-parallel: started by torchrun, SLURM or flowrun launch (RANK, WORLD_SIZE, MASTER_ADDR,\n"
      "MASTER_PORT...), each process is one rank: its sources read a disjoint share of every\n"
      "epoch, gradients are averaged across ranks (Gloo on the CPU, NCCL on CUDA with\n"
      "cuda:LOCAL_RANK), and only rank 0 writes files; the other ranks log warnings only.\n"
      "See docs/distributed.md.\n"
      "\n"
      "Exit codes: 0 finished, 1 a stage failed, 2 invalid description or usage, 130 SIGINT, 143 SIGTERM");
  command->add_option("PIPELINE", args->pipeline, "the description (.json)")->required();
  add_overrides(*command, args->overrides);
  command->add_option("--resume", args->resume,
                      "continue the run saved in a checkpoint (.h5) exactly where it was; auto = the newest "
                      "checkpoint under runs/NAME-*/checkpoints/, or with --run-dir DIR the newest in "
                      "DIR/checkpoints/ (none there: a fresh run)")
      ->type_name("CHECKPOINT|auto");
  command->add_option("--run-dir", args->run_dir,
                      "the run folder (default runs/NAME-YYYYmmdd-HHMMSS; when resuming, the checkpoint's run "
                      "folder): pipeline.json, flowrun.log, run.json (how it ended, busy time per node), checkpoints/ and the outputs of stages whose paths are "
                      "left empty (tensorboard/, metrics.jsonl, eval.json, report.html...)")
      ->type_name("DIR");
  command->add_option("--profile", args->profile,
                      "write a Chrome trace-event file of the run: every packet each node handled on its thread's "
                      "track, each stage's start, items in flight per source and packets queued per serial stage as "
                      "counters; open it in Perfetto (ui.perfetto.dev) or chrome://tracing. TRACE.html beside it "
                      "draws the same in any browser, offline")
      ->type_name("TRACE.json");
  command->add_option("--dist-timeout", args->dist_timeout_s,
                      "data-parallel runs: seconds a collective (or the rendezvous) waits for the other ranks before "
                      "the run fails; a rank that dies is noticed at once regardless")
      ->type_name("SECONDS")
      ->check(CLI::Range(1, 86400));
  command->add_flag("--warn-host-syncs", args->warn_host_syncs,
                    "CUDA: print a warning at every item(), copy to the host or stream sync, where the host waits "
                    "for the GPU (c10's sync debug mode, as torch.cuda.set_sync_debug_mode(\"warn\"); event waits "
                    "are not seen): finds what stalls the queue of work. Log steps, evaluations and checkpoints "
                    "wait by design; training steps should not");
  add_log_level(*command, context);
  command->callback([&context, args] { context.action = [&context, args] { return run_pipeline(context, *args); }; });
}

}  // namespace flowrun::cli
