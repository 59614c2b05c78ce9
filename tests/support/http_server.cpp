#include "http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace flowrun::testing {

LocalHttpServer::LocalHttpServer() {
  listener_ = socket(AF_INET, SOCK_STREAM, 0);
  if (listener_ < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(listener_, 8) != 0) {
    close(listener_);
    throw std::runtime_error("cannot listen on 127.0.0.1");
  }
  socklen_t length = sizeof address;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { loop(); });
}

LocalHttpServer::~LocalHttpServer() {
  stop_ = true;
  thread_.join();
  close(listener_);
}

void LocalHttpServer::serve(const std::string& path, std::string bytes, std::size_t break_after) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_[path] = std::move(bytes);
  break_after_[path] = break_after;
}

std::string LocalHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void LocalHttpServer::loop() {
  while (!stop_) {
    pollfd pfd{listener_, POLLIN, 0};
    if (poll(&pfd, 1, 50) <= 0) continue;
    const int client = accept(listener_, nullptr, nullptr);
    if (client < 0) continue;
    answer(client);
    close(client);
  }
}

void LocalHttpServer::answer(int client) {
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
    pollfd pfd{client, POLLIN, 0};
    if (poll(&pfd, 1, 2000) <= 0) return;
    const ssize_t n = recv(client, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  ++requests_;
  const std::size_t start = request.find(' ') + 1;
  const std::string path = request.substr(start, request.find(' ', start) - start);
  std::string body;
  std::string status = "404 Not Found";
  std::string extra_headers;
  std::size_t content_length = 0;
  std::size_t send_limit = std::string::npos;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = files_.find(path);
    if (it != files_.end()) {
      body = it->second;
      status = "200 OK";
      content_length = body.size();
      const std::size_t range = request.find("Range: bytes=");
      if (range != std::string::npos && ranges_) {
        const std::size_t from = std::stoul(request.substr(range + 13));
        status = "206 Partial Content";
        extra_headers = "Content-Range: bytes " + std::to_string(from) + "-" + std::to_string(body.size() - 1) + "/" +
                        std::to_string(body.size()) + "\r\n";
        body = body.substr(std::min(from, body.size()));
        content_length = body.size();
      } else {
        send_limit = break_after_[path];
      }
    }
  }
  if (send_limit < body.size()) body.resize(send_limit);  // announce everything, send part, hang up
  const std::string head = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(content_length) +
                           "\r\n" + extra_headers +
                           "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
  const std::string response = head + body;
  std::size_t sent = 0;
  while (sent < response.size()) {
    const ssize_t n = send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

}  // namespace flowrun::testing
