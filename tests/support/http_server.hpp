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

  void serve(const std::string& path, std::string bytes);
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
  std::thread thread_;
};

}  // namespace flowrun::testing
