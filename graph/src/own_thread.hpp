// A serial stage's own thread (internal to pipeline.cpp): packets handed over in order
// are handled in that order on one dedicated thread, outside the runtime's task arena.
//
// Why: with one runtime thread (the setting for a 2-core machine, where the train step
// wants both cores for its own threads), TBB runs a thread's newest task first. The
// loader makes new tasks after every step, so a sink's task (a checkpoint, a TensorBoard
// line) waits at the bottom of the deque until the stream ends: periodic checkpoints
// written only at the end. On a thread of their own, the stages that write files run as
// soon as their input arrives, and compute never waits for their disk.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace flowrun {

template <typename Item>
class OwnThread {
 public:
  // `handle` runs on the thread for each item, in hand-over order. `started` and
  // `finished` bracket each item (the graph's reserve_wait / release_wait: the graph is
  // not idle while an item waits here). `on_start` runs first on the thread.
  OwnThread(std::function<void(const Item&)> handle, std::function<void()> started, std::function<void()> finished,
            std::function<void()> on_start = {})
      : handle_(std::move(handle)), started_(std::move(started)), finished_(std::move(finished)) {
    thread_ = std::thread([this, on_start = std::move(on_start)] {
      if (on_start) on_start();
      loop();
    });
  }
  ~OwnThread() { join(); }
  OwnThread(const OwnThread&) = delete;
  OwnThread& operator=(const OwnThread&) = delete;

  void hand_over(Item item) {
    started_();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(item));
    }
    ready_.notify_one();
  }

  // Handles what is queued, then ends the thread.
  void join() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    for (;;) {
      Item item;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;  // closing, nothing left
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      handle_(item);
      item = Item();  // let go of the packet before the graph may count itself idle
      finished_();
    }
  }

  std::function<void(const Item&)> handle_;
  std::function<void()> started_, finished_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Item> queue_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace flowrun
