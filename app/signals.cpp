#include "signals.hpp"

#include <pthread.h>

#include <ctime>

namespace flowrun {
namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void SignalWatcher::block_signals() {
  sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalWatcher::SignalWatcher(std::function<void(int)> on_first, std::function<void(int)> on_second) {
  thread_ = std::thread([this, on_first = std::move(on_first), on_second = std::move(on_second)] {
    const sigset_t set = stop_signals();
    const timespec poll{0, 100 * 1000 * 1000};
    while (!done_) {
      const int sig = sigtimedwait(&set, nullptr, &poll);
      if (sig <= 0) continue;  // timeout or EINTR: check done_ again
      if (first_signal_ == 0) {
        first_signal_ = sig;
        on_first(sig);
      } else {
        on_second(sig);
      }
    }
  });
}

SignalWatcher::~SignalWatcher() {
  done_ = true;
  thread_.join();
}

}  // namespace flowrun
