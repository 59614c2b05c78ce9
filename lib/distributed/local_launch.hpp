// Starts the N processes of a data-parallel job on this machine, as torchrun does:
// each gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (and TORCHELASTIC_USE_AGENT_STORE=True when the launcher hosts the rendezvous), in a
// process group of its own so a terminal's Ctrl-C reaches the launcher only, which
// forwards it once. The first rank to fail ends the job: the others get SIGTERM, then
// SIGKILL after a grace period, and the job's exit code is the failed rank's. Children
// die with the launcher (PR_SET_PDEATHSIG). No LibTorch here.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace flowrun {

struct LaunchPlan {
  int processes = 2;
  std::vector<std::string> command;  // argv; command[0] is a path (not looked up in PATH)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool agent_store = false;                   // the launcher hosts the TCPStore at master_port
  std::map<std::string, std::string> environment;  // extra variables for every rank
  std::string log_folder;                     // "" = ranks write to the launcher's stdout/stderr; else rankN.log there
  // Without a log folder: the lines of ranks other than 0 go to the launcher's stderr
  // as "[rank N] line" (rank 0 keeps the terminal, and its live status line).
  bool label_other_ranks = true;
  std::chrono::milliseconds grace{10000};     // SIGTERM to SIGKILL, once a rank failed
};

struct RankOutcome {
  int rank = 0;
  pid_t pid = 0;
  bool ended = false;
  int exit_code = 0;  // exit status, or 128 + signal
  int signal = 0;     // the signal that killed it, 0 if it exited
  std::string describe() const;  // "rank 1 (pid 123) was killed by SIGKILL"
};

class LocalLaunch {
 public:
  explicit LocalLaunch(LaunchPlan plan);
  ~LocalLaunch();  // kills what still runs
  LocalLaunch(const LocalLaunch&) = delete;
  LocalLaunch& operator=(const LocalLaunch&) = delete;

  void start();  // throws std::runtime_error when a process cannot be started
  // Waits for every rank; returns 0 when all succeeded, else the first failure's code.
  // After forward(SIGINT or SIGTERM), ranks that exit with 128 + that signal stopped as
  // asked: not a failure, and the job's code is theirs.
  // `on_event` hears each rank's end and the job's decisions, one line each.
  int wait(const std::function<void(const std::string&)>& on_event = {});
  void forward(int signal);  // to every rank still running; safe from any thread

  const std::vector<RankOutcome>& outcomes() const { return ranks_; }
  int first_failed_rank() const { return first_failed_; }

 private:
  void relay(int rank, int fd);

  LaunchPlan plan_;
  std::vector<RankOutcome> ranks_;
  std::vector<std::thread> relays_;
  std::atomic<bool> started_{false};
  std::atomic<int> forwarded_{0};  // the stop signal passed on to the ranks, if any
  int first_failed_ = -1;
};

// A TCP port on `address` that nothing listens on now (bound and released: another
// process may still take it before the job does, so prefer a launcher-hosted store).
int free_port(const std::string& address = "127.0.0.1");

}  // namespace flowrun
