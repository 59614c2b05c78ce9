#include "lib/distributed/local_launch.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace flowrun {
namespace {

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// argv/envp arrays built before fork(): the child only calls async-signal-safe functions.
struct CStrings {
  std::vector<std::string> owned;
  std::vector<char*> pointers;
  void finish() {
    pointers.clear();
    for (std::string& s : owned) pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
};

}  // namespace

std::string RankOutcome::describe() const {
  std::string text = "rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ")";
  if (!ended) return text + " is still running";
  if (signal != 0) return text + " was killed by " + signal_name(signal);
  return text + " exited with code " + std::to_string(exit_code);
}

LocalLaunch::LocalLaunch(LaunchPlan plan) : plan_(std::move(plan)) {
  if (plan_.processes < 1) throw std::invalid_argument("a job needs at least one process");
  if (plan_.command.empty()) throw std::invalid_argument("no command to launch");
}

LocalLaunch::~LocalLaunch() {
  for (RankOutcome& r : ranks_) {
    if (r.ended || r.pid <= 0) continue;
    ::kill(-r.pid, SIGKILL);
    int status = 0;
    ::waitpid(r.pid, &status, 0);
  }
  for (std::thread& t : relays_)
    if (t.joinable()) t.join();
}

// Copies a rank's output to stderr line by line, each line written whole with its label.
void LocalLaunch::relay(int rank, int fd) {
  const std::string label = "[rank " + std::to_string(rank) + "] ";
  std::string pending;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t newline;
    while ((newline = pending.find('\n')) != std::string::npos) {
      const std::string line = label + pending.substr(0, newline + 1);
      (void)!::write(STDERR_FILENO, line.data(), line.size());
      pending.erase(0, newline + 1);
    }
  }
  if (!pending.empty()) {
    const std::string line = label + pending + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
  ::close(fd);
}

void LocalLaunch::start() {
  CStrings argv;
  argv.owned = plan_.command;
  argv.finish();
  // The launcher blocks SIGINT/SIGTERM in its threads (to take them in one watcher):
  // the ranks must not inherit that mask.
  sigset_t none;
  sigemptyset(&none);
  const pid_t launcher = ::getpid();
  for (int rank = 0; rank < plan_.processes; ++rank) {
    CStrings env;
    std::map<std::string, std::string> vars = plan_.environment;
    vars["RANK"] = std::to_string(rank);
    vars["WORLD_SIZE"] = std::to_string(plan_.processes);
    vars["LOCAL_RANK"] = std::to_string(rank);
    vars["LOCAL_WORLD_SIZE"] = std::to_string(plan_.processes);
    vars["MASTER_ADDR"] = plan_.master_addr;
    vars["MASTER_PORT"] = std::to_string(plan_.master_port);
    vars["TORCHELASTIC_USE_AGENT_STORE"] = plan_.agent_store ? "True" : "False";
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      if (vars.count(name) == 0) env.owned.push_back(entry);
    }
    for (const auto& [name, value] : vars) env.owned.push_back(name + "=" + value);
    env.finish();
    int log_fd = -1, relay_fd = -1;
    if (!plan_.log_folder.empty()) {
      const std::string path = plan_.log_folder + "/rank" + std::to_string(rank) + ".log";
      log_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (log_fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
    } else if (plan_.label_other_ranks && rank > 0) {
      int fds[2];
      if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
      relay_fd = fds[0];
      log_fd = fds[1];
    }
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("cannot start rank ") + std::to_string(rank) + ": " +
                                          std::strerror(errno));
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(127);  // the launcher died before prctl took effect
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGINT, SIG_DFL);  // a launcher started with them ignored (nohup, some test runners) passes that on
      ::signal(SIGTERM, SIG_DFL);
      if (log_fd >= 0) {
        ::dup2(log_fd, STDOUT_FILENO);
        ::dup2(log_fd, STDERR_FILENO);
      }
      ::execve(argv.pointers[0], argv.pointers.data(), env.pointers.data());
      const char message[] = "flowrun launch: cannot execute the rank's command\n";
      (void)!::write(STDERR_FILENO, message, sizeof message - 1);
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // as the child does: whichever runs first, the group exists before any kill()
    if (log_fd >= 0) ::close(log_fd);
    if (relay_fd >= 0) relays_.emplace_back([this, rank, relay_fd] { relay(rank, relay_fd); });
    RankOutcome outcome;
    outcome.rank = rank;
    outcome.pid = pid;
    ranks_.push_back(outcome);
  }
  started_ = true;
}

void LocalLaunch::forward(int sig) {
  if (!started_) return;
  if (sig == SIGINT || sig == SIGTERM) {
    int none = 0;
    forwarded_.compare_exchange_strong(none, sig);
  }
  // To the rank's whole process group (each rank leads its own), so that whatever it
  // started goes too.
  for (const RankOutcome& r : ranks_)
    if (!r.ended) ::kill(-r.pid, sig);
}

int LocalLaunch::wait(const std::function<void(const std::string&)>& on_event) {
  auto say = [&](const std::string& line) {
    if (on_event) on_event(line);
  };
  std::size_t running = ranks_.size();
  std::chrono::steady_clock::time_point kill_at{};
  bool terminating = false;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) break;  // no children left
    if (pid <= 0) {
      if (terminating && std::chrono::steady_clock::now() >= kill_at) {
        say("ranks still running " + std::to_string(plan_.grace.count() / 1000) + " s after SIGTERM: SIGKILL");
        forward(SIGKILL);
        terminating = false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    for (RankOutcome& r : ranks_) {
      if (r.pid != pid || r.ended) continue;
      r.ended = true;
      --running;
      if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
        r.exit_code = 128 + r.signal;
      } else {
        r.exit_code = WEXITSTATUS(status);
      }
      say(r.describe());
      const bool stopped_as_asked = forwarded_ != 0 && !terminating && r.exit_code == 128 + forwarded_;
      if (r.exit_code != 0 && !stopped_as_asked && first_failed_ < 0) {
        first_failed_ = r.rank;
        if (running > 0) {
          say("rank " + std::to_string(r.rank) + " failed: stopping the other ranks (SIGTERM)");
          forward(SIGTERM);
          terminating = true;
          kill_at = std::chrono::steady_clock::now() + plan_.grace;
        }
      }
    }
  }
  for (std::thread& t : relays_)
    if (t.joinable()) t.join();  // the ranks are gone: their pipes are at their ends
  if (first_failed_ >= 0) return ranks_[static_cast<std::size_t>(first_failed_)].exit_code;
  return forwarded_ != 0 ? 128 + forwarded_ : 0;
}

int free_port(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    throw std::invalid_argument("not an IPv4 address: " + address);
  }
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error("no free port on " + address + ": " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace flowrun
