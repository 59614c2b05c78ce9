// flowrun ablate FILE: runs every (variant, seed) of an ablation file, one after the
// other, each as its own `flowrun run` process in its own run folder, and keeps
// ablation.md / .csv / .html current after every run. A sweep resumes: a run whose
// run.json says finished is not run again, an interrupted one continues from its
// newest checkpoint (--resume auto --run-dir), a failed one is kept as failed unless
// --retry-failed. Separate processes keep one run's failure, threads and memory out of
// the next, and make each run exactly what `flowrun run` with the same --set does.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "ablation.hpp"
#include "cli.hpp"
#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "signals.hpp"

extern char** environ;

namespace flowrun::cli {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct AblateArgs {
  std::string file;
  std::string out;
  std::vector<std::string> overrides;
  bool dry_run = false;
  bool retry_failed = false;
};

struct PlannedRun {
  const ablation::Variant* variant;
  std::uint64_t seed;
  std::string folder;
};

// "2-core Intel(R) Xeon(R) Processor": the reports say where figures were measured.
std::string machine_text() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string model;
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) != 0) continue;
    model = line.substr(line.find(':') + 2);
    break;
  }
  return std::to_string(std::thread::hardware_concurrency()) + "-core " + (model.empty() ? "machine" : model);
}


std::string minutes(double seconds) {
  return std::isfinite(seconds) ? log::fixed(seconds / 60, 1) + " min" : std::string("?");
}

class Sweep {
 public:
  Sweep(Context& context, const AblateArgs& args) : context_(context), args_(args) {
    try {
      spec_ = ablation::parse_spec(args.file);
    } catch (const std::exception& e) {
      throw UsageError(e.what());
    }
    spec_.overrides.insert(spec_.overrides.end(), args.overrides.begin(), args.overrides.end());
    out_ = args.out.empty() ? "runs/ablations/" + spec_.name : args.out;
    for (std::uint64_t seed : spec_.seeds)  // seed-major: a first comparison of every variant comes early
      for (const ablation::Variant& v : spec_.variants)
        plan_.push_back({&v, seed, (fs::path(out_) / ablation::Spec::run_name(v, seed)).string()});
    machine_ = machine_text();
  }

  // Every variant's description must be valid before the first run starts.
  void check_variants() {
    for (const ablation::Variant& v : spec_.variants) {
      try {
        load_pipeline(context_, spec_.base, spec_.run_overrides(v, spec_.seeds.front()));
      } catch (const std::exception& e) {
        throw UsageError("ablation " + spec_.file + ", variant '" + v.name + "': " + e.what());
      }
    }
  }

  int run() {
    fs::create_directories(out_);
    add_log_file((fs::path(out_) / "ablate.log").string());
    log::info("ablation '", spec_.name, "': ", spec_.variants.size(), " variant(s) x ", spec_.seeds.size(), " seed(s) = ",
              plan_.size(), " runs of ", spec_.base, " in ", out_);
    std::vector<const PlannedRun*> todo;
    for (const PlannedRun& p : plan_) {
      const ablation::RunResult r = read(p);
      const bool skip = r.state == "finished" || (r.state == "failed" && !args_.retry_failed);
      log::info("  ", ablation::Spec::run_name(*p.variant, p.seed), ": ", r.state,
                skip ? (r.state == "failed" ? " (kept; --retry-failed runs it again)" : " (not run again)")
                     : r.state == "not run" ? "" : " (resumes from its newest checkpoint)");
      if (!skip) todo.push_back(&p);
    }
    if (args_.dry_run) return kExitOk;
    write_reports();
    SignalWatcher watcher(
        [this](int sig) {
          log::warn(sig == SIGINT ? "SIGINT" : "SIGTERM", " received: stopping the current run (it saves a checkpoint; ",
                    "run the same command again to continue the sweep)");
          stop_signal_ = sig;
          if (const pid_t child = child_.load()) ::kill(child, sig);
        },
        [this](int sig) {
          if (const pid_t child = child_.load()) ::kill(child, sig);
        });
    for (std::size_t i = 0; i < todo.size() && !stop_signal_; ++i) run_one(*todo[i], i, todo.size());
    write_reports();
    log::clear_status();
    log::info("reports: ", (fs::path(out_) / "ablation.md").string(), ", ablation.csv, ablation_runs.csv, ablation.html");
    std::cout << render_markdown() << std::flush;
    if (stop_signal_) return stop_signal_ == SIGINT ? 130 : 143;
    for (const PlannedRun& p : plan_)
      if (read(p).state != "finished") return kExitFailed;
    return kExitOk;
  }

 private:
  ablation::RunResult read(const PlannedRun& p) const {
    return ablation::read_run(p.folder, p.variant->name, p.seed, spec_.metric);
  }

  void run_one(const PlannedRun& p, std::size_t index, std::size_t count) {
    const std::string name = ablation::Spec::run_name(*p.variant, p.seed);
    fs::create_directories(p.folder);
    std::vector<std::string> argv = {self_executable(), "run", spec_.base, "--run-dir", p.folder, "--resume", "auto",
                                     "--log-level", context_.log_level_or_default()};
    for (const std::string& o : spec_.run_overrides(*p.variant, p.seed)) {
      argv.push_back("--set");
      argv.push_back(o);
    }
    fs::remove(fs::path(p.folder) / "run.json");  // the new session writes its own
    const std::string console = (fs::path(p.folder) / "console.log").string();
    log::info("run ", index + 1, "/", count, ": ", name, " (output: ", console, ")");
    const auto t0 = Clock::now();
    const std::int64_t step0 = read(p).step;
    const pid_t pid = spawn(argv, console);
    child_ = pid;
    int status = 0;
    for (;;) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) break;
      if (done < 0 && errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
      show_progress(p, name, index, count, t0, step0);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    child_ = 0;
    const double session_s = std::chrono::duration<double>(Clock::now() - t0).count();
    record_session(p, session_s);
    finished_walls_.push_back(read(p).wall_s);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    const ablation::RunResult r = read(p);
    log::clear_status();
    if (r.state == "finished") {
      log::info("run ", index + 1, "/", count, ": ", name, " finished in ", minutes(session_s), ": final ", spec_.metric, " ",
                r.final_metric, ", best ", r.best_metric);
    } else if (!stop_signal_) {
      log::warn("run ", index + 1, "/", count, ": ", name, " ended with exit code ", code,
                r.error.empty() ? "" : ": " + r.error, " (see ", console, "); the sweep goes on");
    }
    write_reports();
  }

  // The child's standard output and error go to the run's console.log (appended).
  pid_t spawn(const std::vector<std::string>& args, const std::string& console) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, console.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    return pid;
  }

  // Wall time over every session of the run (run.json only knows the last one).
  void record_session(const PlannedRun& p, double seconds) {
    const fs::path path = fs::path(p.folder) / "ablate_run.json";
    nlohmann::json j = nlohmann::json::object();
    std::ifstream in(path);
    if (in) {
      try {
        j = nlohmann::json::parse(in);
      } catch (const nlohmann::json::exception&) {
      }
    }
    j["wall_s"] = j.value("wall_s", 0.0) + seconds;
    j["sessions"] = j.value("sessions", 0) + 1;
    write_file_atomically(path.string(), j.dump(1) + "\n");
  }

  // "[ablate] 3/8 randaugment-s0  step 230/1170 (20%)  run ETA 6.1 min  sweep ETA 41 min"
  void show_progress(const PlannedRun& p, const std::string& name, std::size_t index, std::size_t count,
                     Clock::time_point t0, std::int64_t step0) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (elapsed - last_progress_ < 1.0) return;
    last_progress_ = elapsed;
    const ablation::RunResult r = read(p);
    double run_left = std::numeric_limits<double>::quiet_NaN(), run_total = run_left;
    if (r.total_steps > 0 && r.step > step0) {
      const double rate = static_cast<double>(r.step - step0) / elapsed;
      run_left = static_cast<double>(r.total_steps - r.step) / rate;
      run_total = static_cast<double>(r.total_steps) / rate;
    }
    const ablation::Stat done = ablation::stat_of(finished_walls_);
    const double per_run = done.n ? done.mean : run_total;
    const double sweep_left = run_left + per_run * static_cast<double>(count - index - 1);
    std::string text = "[ablate] " + std::to_string(index + 1) + "/" + std::to_string(count) + " " + name;
    if (r.total_steps > 0)
      text += "  step " + std::to_string(r.step) + "/" + std::to_string(r.total_steps) + " (" +
              std::to_string(100 * r.step / r.total_steps) + "%)";
    else
      text += "  starting";
    text += "  run ETA " + minutes(run_left) + "  sweep ETA " + minutes(sweep_left);
    log::status(text);
    // Without a terminal there is no status line: a log line every five minutes instead.
    if (!log::interactive() && elapsed - last_logged_ >= 300) {
      last_logged_ = elapsed;
      log::info(text.substr(9));
    }
  }

  std::vector<ablation::RunResult> results() const {
    std::vector<ablation::RunResult> all;
    for (const PlannedRun& p : plan_) all.push_back(read(p));
    return all;
  }

  std::string render_markdown() const {
    return ablation::render_markdown(spec_, ablation::summarize(spec_, results()), machine_);
  }

  void write_reports() const {
    const auto runs = results();
    const auto summary = ablation::summarize(spec_, runs);
    const fs::path out(out_);
    write_file_atomically((out / "ablation.md").string(), ablation::render_markdown(spec_, summary, machine_));
    write_file_atomically((out / "ablation.csv").string(), ablation::render_csv(spec_, summary));
    write_file_atomically((out / "ablation_runs.csv").string(), ablation::render_runs_csv(spec_, runs));
    write_file_atomically((out / "ablation.html").string(), ablation::render_html(spec_, summary, runs, machine_));
  }

  Context& context_;
  const AblateArgs& args_;
  ablation::Spec spec_;
  std::string out_;
  std::string machine_;
  std::vector<PlannedRun> plan_;
  std::vector<double> finished_walls_;
  std::atomic<pid_t> child_{0};
  std::atomic<int> stop_signal_{0};
  double last_progress_ = -1, last_logged_ = 0;
};

int run_ablation(Context& context, const AblateArgs& args) {
  Sweep sweep(context, args);
  sweep.check_variants();
  return sweep.run();
}

}  // namespace

void add_ablate_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<AblateArgs>();
  CLI::App* command = app.add_subcommand("ablate", "run every variant x seed of an ablation file and tabulate them");
  command->footer(
      "An ablation file names a base pipeline, variants (each a list of --set overrides) and seeds:\n"
      "\n"
      "  {\"name\": \"augment\", \"base\": \"../quickstart.json\", \"seeds\": [0, 1],\n"
      "   \"set\": [\"nodes.train_data.params.epochs=2\"],            (optional, every run)\n"
      "   \"metric\": \"accuracy\",                                   (optional, the eval metric)\n"
      "   \"variants\": [{\"name\": \"crop_flip\", \"set\": []},\n"
      "                {\"name\": \"randaugment\", \"set\": [\"nodes.augment.plugin=randaugment\"]}]}\n"
      "\n"
      "Every variant is validated first (exit 2 naming the variant). Then each (variant, seed), seed\n"
      "by seed, runs as `flowrun run BASE --set ... --set seed=S` in OUT/VARIANT-sS/ (its output in\n"
      "console.log there), one after the other, with a progress line and ETA over the sweep. After\n"
      "every run OUT/ablation.md, ablation.csv (per variant: final and best eval metric as mean and\n"
      "sample std over seeds, images/s, the train stage's data stall, wall time), ablation_runs.csv (per run) and\n"
      "ablation.html (validation curves, the table, bars with error bars) are rewritten.\n"
      "\n"
      "Resumable: run the same command again after Ctrl-C or a crash. Finished runs (run.json says\n"
      "so) are not run again; an interrupted run continues from its newest checkpoint; a failed run\n"
      "is kept as failed unless --retry-failed.\n"
      "\n"
      "Exit codes: 0 every run finished, 1 some run failed, 2 invalid file or variant, 130 SIGINT, 143 SIGTERM");
  command->add_option("FILE", args->file, "the ablation file (.json)")->required();
  command->add_option("--out", args->out, "folder of the sweep (default runs/ablations/NAME)")->type_name("DIR");
  add_overrides(*command, args->overrides);
  command->add_flag("--dry-run", args->dry_run, "check every variant and list what would run, then stop");
  command->add_flag("--retry-failed", args->retry_failed, "run failed runs again (from their newest checkpoint)");
  add_log_level(*command, context);
  command->callback([&context, args] { context.action = [&context, args] { return run_ablation(context, *args); }; });
}

}  // namespace flowrun::cli
