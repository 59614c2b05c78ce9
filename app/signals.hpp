// SIGINT/SIGTERM handling for a run: the first signal asks the pipeline to stop
// cleanly (drop in-flight work, stages get stop(Interrupted)); a second one cancels
// the graph at once. Signals are blocked in every thread and taken by one watcher
// thread with sigtimedwait, so no work happens inside a signal handler.
#pragma once

#include <atomic>
#include <csignal>
#include <functional>
#include <thread>

namespace flowrun {

class SignalWatcher {
 public:
  // Call block_signals() first thing in main(), before any thread starts, so that
  // every thread inherits the blocked mask.
  static void block_signals();

  SignalWatcher(std::function<void(int)> on_first, std::function<void(int)> on_second);
  ~SignalWatcher();  // stops the watcher thread

  int received() const { return first_signal_; }  // 0 if none

 private:
  std::atomic<bool> done_{false};
  std::atomic<int> first_signal_{0};
  std::thread thread_;
};

}  // namespace flowrun
