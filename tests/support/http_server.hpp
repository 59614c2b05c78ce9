// A minimal HTTP/1.1 server on 127.0.0.1 (ephemeral port) for download tests: serves
// fixed bytes per path, 404 otherwise, one request per connection. Stops with the
// object. Never listens beyond loopback.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace flowrun::testing {

class LocalHttpServer {
 public:
  LocalHttpServer();
  ~LocalHttpServer();
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  // `break_after`: a full (non-range) response stops after that many body bytes and
  // the connection closes, as a dropped transfer would.
  void serve(const std::string& path, std::string bytes, std::size_t break_after = std::string::npos);
  void honour_ranges(bool yes) { ranges_ = yes; }  // answer "Range: bytes=N-" with 206
  std::string url(const std::string& path) const;
  int requests() const { return requests_; }

 private:
  void loop();
  void answer(int client);

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::mutex mutex_;
  std::map<std::string, std::string> files_;
  std::map<std::string, std::size_t> break_after_;
  std::atomic<bool> ranges_{true};
  std::thread thread_;
};

}  // namespace flowrun::testing
