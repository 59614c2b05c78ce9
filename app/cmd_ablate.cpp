// flowrun ablate FILE: runs the prepared runs of an ablation file, then every (cell,
// seed), one after the other, each as its own `flowrun run` process in its own run
// folder, and keeps the reports current after every run. A sweep resumes: a run whose
// run.json says finished is not run again, an interrupted one continues from its
// newest checkpoint (--resume auto --run-dir), a failed one is kept as failed unless
// --retry-failed (a failed prepared run stops the sweep: the runs need it). Separate processes keep one run's failure, threads and memory out of
// the next, and make each run exactly what `flowrun run` with the same --set does.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/file.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
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
constexpr const char* kLockName = ".ablate.lock";

struct AblateArgs {
  std::string file;
  std::string out;
  std::vector<std::string> overrides;
  std::string rows, cols;
  bool dry_run = false;
  bool report_only = false;
  bool retry_failed = false;
};

// One `flowrun run` of the sweep: a prepared run or a (cell, seed).
struct PlannedRun {
  bool prepared = false;
  std::string name;  // "prepare/NAME" or "CELL-sSEED"
  std::size_t cell = 0;
  std::uint64_t seed = 0;
  std::string folder;
  std::string pipeline;
  std::vector<std::string> overrides;  // ${prepare.NAME} resolved
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

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class Sweep {
 public:
  Sweep(Context& context, const AblateArgs& args) : context_(context), args_(args) {
    try {
      spec_ = ablation::parse_spec(args.file);
    } catch (const std::exception& e) {
      throw UsageError(e.what());
    }
    try {
      spec_.set_pivot(args.rows, args.cols);
    } catch (const std::exception& e) {
      throw UsageError(std::string("--rows/--cols: ") + e.what());
    }
    out_ = args.out.empty() ? "runs/ablations/" + spec_.name : args.out;
    // Absolute: the folder is written into the runs' recorded descriptions.
    std::map<std::string, std::string> folders;
    for (const ablation::Prepared& p : spec_.prepare)
      folders[p.name] =
          fs::absolute(p.run_dir.empty() ? fs::path(out_) / "prepare" / p.name : fs::path(p.run_dir)).lexically_normal().string();
    auto resolved = [&](const std::vector<std::string>& overrides) {
      std::vector<std::string> out;
      for (const std::string& o : overrides) {
        try {
          out.push_back(ablation::substitute_prepared(o, folders));
        } catch (const std::exception& e) {
          throw UsageError(std::string("--set: ") + e.what());  // the file's were checked when it was read
        }
      }
      return out;
    };
    for (const ablation::Prepared& p : spec_.prepare)
      prepared_.push_back({true, "prepare/" + p.name, 0, 0, folders[p.name], p.pipeline, resolved(p.overrides)});
    for (std::uint64_t seed : spec_.seeds)  // seed-major: a first comparison of every cell comes early
      for (std::size_t c = 0; c < spec_.cells.size(); ++c) {
        const std::string name = ablation::Spec::run_name(spec_.cells[c], seed);
        std::vector<std::string> overrides = spec_.run_overrides(spec_.cells[c], seed);
        // The command line's --set come after the entries' (and before seed=S): they win.
        overrides.insert(overrides.end() - 1, args.overrides.begin(), args.overrides.end());
        plan_.push_back({false, name, c, seed, (fs::path(out_) / name).string(), spec_.base, resolved(overrides)});
      }
    machine_ = machine_text();
  }

  // Every prepared run's and every cell's description must be valid before the first
  // run starts (checked with the first seed; the seed changes no structure).
  void check_descriptions() {
    for (const PlannedRun& p : prepared_) check(p, "prepared run '" + p.name.substr(8) + "'");
    for (const PlannedRun& p : plan_)
      if (p.seed == spec_.seeds.front())
        check(p, (spec_.axes.size() == 1 ? spec_.axes[0].name : std::string("run")) + " '" + spec_.cells[p.cell].name + "'");
    check_folders_match();
  }

  // A run folder made by another description (the file, its pipeline or the command
  // line's --set changed since; or another file sharing a prepared run_dir asks for
  // something else) is not this file's run: skipping, resuming or reporting it would
  // mix results. Refused before anything runs, naming what differs.
  void check_folders_match() {
    std::vector<std::string> stale;
    for (const std::vector<PlannedRun>* runs : {&prepared_, &plan_})
      for (const PlannedRun& p : *runs) {
        const fs::path recorded = fs::path(p.folder) / "pipeline.json";
        if (!fs::exists(recorded)) continue;
        std::string differences;
        try {
          differences = ablation::description_differences(
              read_whole(recorded), load_pipeline(context_, p.pipeline, p.overrides).resolved_json);
        } catch (const nlohmann::json::parse_error& e) {
          differences = std::string("its pipeline.json is not valid JSON (") + e.what() + ")";
        } catch (const nlohmann::json::exception& e) {
          differences = std::string("its pipeline.json could not be compared (") + e.what() + ")";
        }
        if (!differences.empty()) stale.push_back("  " + p.folder + ": " + differences);
      }
    if (stale.empty()) return;
    if (args_.dry_run) {
      log::warn(stale.size(), " run folder(s) were made by another description than the one the file gives now; a "
                "sweep would stop here (exit 2):");
      for (const std::string& s : stale) log::warn(s);
      return;
    }
    std::string list;
    for (std::size_t i = 0; i < stale.size() && i < 5; ++i) list += stale[i] + "\n";
    if (stale.size() > 5) list += "  and " + std::to_string(stale.size() - 5) + " more\n";
    throw UsageError("ablation " + spec_.file + ": " + std::to_string(stale.size()) +
                     " run folder(s) were made by another description than the one this file (with --set) gives now:\n" +
                     list + "run them again by removing those folders, give --out another folder (or the prepared run " +
                     "another run_dir), or put the file back as it was");
  }

  int run() {
    fs::create_directories(out_);
    add_log_file((fs::path(out_) / "ablate.log").string());
    std::string shape;
    for (const ablation::Axis& a : spec_.axes) shape += std::to_string(a.entries.size()) + " " + a.name + " x ";
    log::info("ablation '", spec_.name, "': ", spec_.prepare.empty() ? "" : std::to_string(spec_.prepare.size()) + " prepared run(s), then ",
              shape, spec_.seeds.size(), " seed(s) = ", plan_.size(), " runs of ", spec_.base, " in ", out_);
    std::vector<const PlannedRun*> todo, prepared_todo;
    std::string busy, failed_prepared;
    for (const std::vector<PlannedRun>* runs : {&prepared_, &plan_})
      for (const PlannedRun& p : *runs) {
        const ablation::RunResult r = read(p);
        const bool skip = r.state == "finished" || (r.state == "failed" && !args_.retry_failed);
        log::info("  ", p.name, ": ", r.state,
                  skip ? (r.state == "failed" ? " (kept; --retry-failed runs it again)" : " (not run again)")
                  : r.state == "running" ? " (by another flowrun ablate)"
                  : r.state == "not run" ? "" : " (resumes from its newest checkpoint)");
        if (args_.dry_run) log::debug("    ", command_text(p));
        if (r.state == "running" && busy.empty()) busy = p.folder;
        if (p.prepared && r.state == "failed" && skip && failed_prepared.empty())
          failed_prepared = p.name + (r.error.empty() ? "" : ": " + r.error);
        if (!skip) (p.prepared ? prepared_todo : todo).push_back(&p);
      }
    // The prepared runs are needed only while some run is left to do.
    if (!todo.empty()) todo.insert(todo.begin(), prepared_todo.begin(), prepared_todo.end());
    if (args_.dry_run) return kExitOk;
    if (args_.report_only) {
      write_reports();
      log::info("reports: ", (fs::path(out_) / "ablation.md").string(), ", ablation.csv, ablation_runs.csv, ",
                "ablation_differences.csv, ablation.html");
      std::cout << render_markdown() << std::flush;
      return kExitOk;
    }
    if (!busy.empty()) {
      log::error(busy, " is being run by another flowrun ablate (it holds ", busy, "/", kLockName,
                 "; a prepared run shared by two sweeps, or the same sweep twice): run this one when that ends");
      return kExitFailed;
    }
    if (!failed_prepared.empty() && !todo.empty()) {
      log::error("prepared run ", failed_prepared, " (failed earlier; every run needs it: --retry-failed runs it again)");
      write_reports();
      return kExitFailed;
    }
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
    for (std::size_t i = 0; i < todo.size() && !stop_signal_; ++i) {
      const bool ran = run_one(*todo[i], i, todo.size());
      if (todo[i]->prepared && !stop_signal_ && (!ran || read(*todo[i]).state != "finished")) {
        const ablation::RunResult r = read(*todo[i]);
        log::error("prepared run ", todo[i]->name, " ", r.state, r.error.empty() ? "" : ": " + r.error, " (see ",
                   todo[i]->folder, "/console.log); the sweep stops, as every run needs it");
        write_reports();
        return kExitFailed;
      }
    }
    write_reports();
    log::clear_status();
    log::info("reports: ", (fs::path(out_) / "ablation.md").string(), ", ablation.csv, ablation_runs.csv, ",
              "ablation_differences.csv, ablation.html");
    std::cout << render_markdown() << std::flush;
    if (stop_signal_) return stop_signal_ == SIGINT ? 130 : 143;
    for (const PlannedRun& p : plan_)
      if (read(p).state != "finished") return kExitFailed;
    return kExitOk;
  }

 private:
  void check(const PlannedRun& p, const std::string& what) {
    try {
      load_pipeline(context_, p.pipeline, p.overrides);
    } catch (const std::exception& e) {
      throw UsageError("ablation " + spec_.file + ", " + what + ": " + e.what());
    }
  }

  ablation::RunResult read(const PlannedRun& p) const {
    ablation::RunResult r = ablation::read_run(p.folder, spec_.metric);
    r.name = p.name;
    r.cell = p.cell;
    r.seed = p.seed;
    if (r.state != "not run" && r.state != "finished" && p.folder != held_ && locked_elsewhere(p.folder))
      r.state = "running";
    return r;
  }

  // A run folder is locked (flock on FOLDER/.ablate.lock) while a runner runs it: two
  // sweeps sharing a prepared run must not both resume it. The run's own process
  // inherits the lock, so it stays held while the run lives, even if the sweep is
  // killed; the kernel drops it with the last holder. The probe takes a shared lock:
  // probes never conflict with each other, only with a runner's exclusive one.
  static bool locked_elsewhere(const std::string& folder) {
    const int fd = ::open((fs::path(folder) / kLockName).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);  // also releases the shared lock just taken
    return busy;
  }

  // Holds the run folder's lock for the lifetime of the object: held() says whether it
  // got it (it retries for two seconds, in case another runner's probe holds it briefly).
  class FolderLock {
   public:
    explicit FolderLock(const std::string& folder) : fd_(::open((fs::path(folder) / kLockName).c_str(), O_RDWR | O_CREAT, 0644)) {
      for (int attempt = 0; fd_ >= 0 && attempt < 20; ++attempt) {
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
          held_ = true;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    ~FolderLock() {
      if (fd_ >= 0) ::close(fd_);
    }
    bool held() const { return held_; }
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;

   private:
    int fd_;
    bool held_ = false;
  };

  std::vector<std::string> command(const PlannedRun& p) const {
    std::vector<std::string> argv = {self_executable(), "run", p.pipeline, "--run-dir", p.folder, "--resume", "auto",
                                     "--log-level", context_.log_level_or_default()};
    for (const std::string& o : p.overrides) {
      argv.push_back("--set");
      argv.push_back(o);
    }
    return argv;
  }

  std::string command_text(const PlannedRun& p) const {
    std::string text;
    for (const std::string& a : command(p)) text += (text.empty() ? "" : " ") + a;
    return text;
  }

  // Runs one planned run; false when it did not start (another runner holds its folder,
  // or it finished meanwhile).
  bool run_one(const PlannedRun& p, std::size_t index, std::size_t count) {
    const std::string& name = p.name;
    fs::create_directories(p.folder);
    // Lock first, then look again: another sweep may have run it since the plan was made.
    const FolderLock lock(p.folder);
    if (!lock.held()) {
      log::warn("run ", index + 1, "/", count, ": ", name, " is being run by another flowrun ablate (", p.folder, "/",
                kLockName, " is held); skipped");
      return false;
    }
    held_ = p.folder;
    struct Release {
      std::string& held;
      ~Release() { held.clear(); }
    } release{held_};
    const ablation::RunResult before = read(p);
    if (before.state == "finished" || (before.state == "failed" && !args_.retry_failed)) {
      log::info("run ", index + 1, "/", count, ": ", name, " is ", before.state, " already (another sweep ran it)");
      return false;
    }
    const std::vector<std::string> argv = command(p);
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
    return true;
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

  ablation::Report report() const {
    std::vector<ablation::RunResult> runs, prepared;
    for (const PlannedRun& p : plan_) runs.push_back(read(p));
    for (const PlannedRun& p : prepared_) prepared.push_back(read(p));
    return ablation::analyse(spec_, std::move(runs), std::move(prepared), machine_);
  }

  std::string render_markdown() const { return ablation::render_markdown(spec_, report()); }

  void write_reports() const {
    const ablation::Report r = report();
    const fs::path out(out_);
    write_file_atomically((out / "ablation.md").string(), ablation::render_markdown(spec_, r));
    write_file_atomically((out / "ablation.csv").string(), ablation::render_csv(spec_, r));
    write_file_atomically((out / "ablation_runs.csv").string(), ablation::render_runs_csv(spec_, r));
    write_file_atomically((out / "ablation_differences.csv").string(), ablation::render_differences_csv(spec_, r));
    write_file_atomically((out / "ablation.html").string(), ablation::render_html(spec_, r));
  }

  Context& context_;
  const AblateArgs& args_;
  ablation::Spec spec_;
  std::string out_;
  std::string machine_;
  std::vector<PlannedRun> prepared_, plan_;
  std::string held_;  // the run folder this runner holds the lock of (its state is read, not probed)
  std::vector<double> finished_walls_;
  std::atomic<pid_t> child_{0};
  std::atomic<int> stop_signal_{0};
  double last_progress_ = -1, last_logged_ = 0;
};

int run_ablation(Context& context, const AblateArgs& args) {
  Sweep sweep(context, args);
  if (!args.report_only) sweep.check_descriptions();  // reports read the folders as they are
  return sweep.run();
}

}  // namespace

void add_ablate_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<AblateArgs>();
  CLI::App* command = app.add_subcommand("ablate", "run every cell (variants, or a grid of axes) x seed of an ablation file, after any prepared runs, and compare them with paired 95% intervals");
  command->footer(
      "An ablation file names a base pipeline, seeds, and variants or axes (each entry a list of\n"
      "--set overrides); optionally runs to prepare first:\n"
      "\n"
      "  {\"name\": \"augment\", \"base\": \"../quickstart.json\", \"seeds\": [0, 1, 2],\n"
      "   \"set\": [\"nodes.train_data.params.epochs=2\"],            (optional, every run)\n"
      "   \"metric\": \"accuracy\",                                   (optional, the eval metric)\n"
      "   \"variants\": [{\"name\": \"crop_flip\", \"set\": []},\n"
      "                {\"name\": \"randaugment\", \"set\": [\"nodes.augment.plugin=randaugment\"]}]}\n"
      "\n"
      "  \"axes\": {\"strategy\": [...entries...], \"per_class\": [...entries...]}   (a grid: every combination)\n"
      "  \"baseline\": {\"strategy\": \"full_ft\"}      (optional; else each axis's first entry)\n"
      "  \"rows\": \"strategy\", \"cols\": \"per_class\"   (optional: the pivot tables)\n"
      "  \"prepare\": [{\"name\": \"pretrain\", \"pipeline\": \"../pretrain.json\", \"set\": [...]}]\n"
      "      runs once, first, in OUT/prepare/NAME or its \"run_dir\" (sweeps can share one);\n"
      "      any override may name its folder as ${prepare.pretrain}\n"
      "\n"
      "Every description is validated first (exit 2 naming the run). Then the prepared runs run in\n"
      "OUT/prepare/NAME/ (a failed one stops the sweep), and each (cell, seed), seed by seed, as\n"
      "`flowrun run BASE --set ... --set seed=S` in OUT/ENTRY1-ENTRY2-sS/ (output in console.log\n"
      "there), one after the other, with a progress line and ETA over the sweep. After every run\n"
      "OUT/ablation.md, ablation.csv (per cell: final and best eval metric, mean and sample std over\n"
      "seeds; the paired difference to the baseline with its 95% Student-t interval; images/s, data\n"
      "stall, wall time), the pivot tables rows x cols, ablation_runs.csv (per run),\n"
      "ablation_differences.csv (every paired comparison along every axis) and ablation.html\n"
      "(curves, tables, intervals, the metric against a numeric cols axis) are rewritten.\n"
      "\n"
      "Resumable: run the same command again after Ctrl-C or a crash. Finished runs (run.json says\n"
      "so) are not run again; an interrupted run continues from its newest checkpoint; a failed run\n"
      "is kept as failed unless --retry-failed. --dry-run lists every run and its state (with\n"
      "--log-level debug, its command). --set on the command line applies to every cell's run after\n"
      "its entries' (prepared runs keep theirs). A runner locks the run folder it runs (.ablate.lock):\n"
      "a sweep that finds one locked stops. A run folder whose recorded pipeline.json is not the\n"
      "description the file gives now (the file, its pipeline or --set changed) stops the sweep\n"
      "before anything runs (exit 2, naming what differs). docs/ablations.md has the whole format.\n"
      "\n"
      "Exit codes: 0 every run finished, 1 some run failed or was interrupted (or a prepared run\n"
      "failed, or a folder is locked), 2 invalid file or run, or a folder made by another\n"
      "description, 130 SIGINT, 143 SIGTERM");
  command->add_option("FILE", args->file, "the ablation file (.json)")->required();
  command->add_option("--out", args->out, "folder of the sweep (default runs/ablations/NAME)")->type_name("DIR");
  add_overrides(*command, args->overrides);
  command->add_option("--rows", args->rows, "the axis down the pivot tables (default: the file's \"rows\", else the first)")
      ->type_name("AXIS");
  command->add_option("--cols", args->cols, "the axis across the pivot tables (default: the file's \"cols\", else the first other axis)")
      ->type_name("AXIS");
  command->add_flag("--dry-run", args->dry_run, "check every run's description and list every run with its state, then stop");
  command->add_flag("--report-only", args->report_only,
                    "rewrite the reports from the run folders as they are (e.g. with other --rows/--cols), run nothing");
  command->add_flag("--retry-failed", args->retry_failed, "run failed runs again (from their newest checkpoint)");
  add_log_level(*command, context);
  command->callback([&context, args] { context.action = [&context, args] { return run_ablation(context, *args); }; });
}

}  // namespace flowrun::cli
