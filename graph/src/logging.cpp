// The only file that talks to spdlog (see logging.hpp for why).
#include "flowrun/logging.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace flowrun {
namespace {

// The status line and the log sinks share one lock: a log line first erases the
// status line, prints, then draws it again below itself.
struct StatusLine {
  std::mutex mutex;
  std::string text;  // "" = none shown
  bool tty = false;
  std::FILE* stream = stdout;  // stderr when standard output carries data

  void erase_locked() {
    if (!text.empty()) std::fputs("\r\033[K", stream);
  }
  void draw_locked() {
    if (text.empty()) return;
    std::fputs(text.c_str(), stream);
    std::fflush(stream);
  }
};

StatusLine& status_line() {
  static StatusLine line;
  return line;
}

}  // namespace

namespace log {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
    case Level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

bool enabled(Level level) { return spdlog::default_logger_raw()->should_log(to_spdlog(level)); }

void write(Level level, const std::string& message) { spdlog::default_logger_raw()->log(to_spdlog(level), message); }

bool interactive() { return status_line().tty; }

void status(const std::string& text) {
  StatusLine& line = status_line();
  if (!line.tty) return;
  std::lock_guard<std::mutex> lock(line.mutex);
  line.erase_locked();
  line.text = text;
  line.draw_locked();
}

void clear_status() {
  StatusLine& line = status_line();
  std::lock_guard<std::mutex> lock(line.mutex);
  line.erase_locked();
  std::fflush(line.stream);
  line.text.clear();
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

}  // namespace log

namespace {

// Wraps the real sinks so that log lines and the status line do not overwrite each other.
class StatusAwareSink : public spdlog::sinks::sink {
 public:
  explicit StatusAwareSink(std::vector<std::shared_ptr<spdlog::sinks::sink>> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    StatusLine& line = status_line();
    std::lock_guard<std::mutex> lock(line.mutex);
    line.erase_locked();
    std::fflush(line.stream);
    for (auto& sink : inner_)
      if (sink->should_log(msg.level)) sink->log(msg);
    for (auto& sink : inner_) sink->flush();
    line.draw_locked();
  }
  void flush() override {
    for (auto& sink : inner_) sink->flush();
  }
  void set_pattern(const std::string& pattern) override {
    for (auto& sink : inner_) sink->set_pattern(pattern);
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override {
    for (auto& sink : inner_) sink->set_formatter(f->clone());
  }

 private:
  std::vector<std::shared_ptr<spdlog::sinks::sink>> inner_;
};

// Passes only messages below warn to its inner sink (stdout); warn and above go to stderr.
class BelowWarnSink : public spdlog::sinks::sink {
 public:
  explicit BelowWarnSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    if (msg.level < spdlog::level::warn) inner_->log(msg);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

bool configure_logging(const std::string& level, LogOutput output) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str answers "off" for any unknown word; accept only a real "off".
  if (parsed == spdlog::level::off && level != "off") return false;
  std::vector<std::shared_ptr<spdlog::sinks::sink>> sinks;
  StatusLine& line = status_line();
  if (output == LogOutput::StderrOnly) {
    sinks.push_back(std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>());
    line.stream = stderr;
    line.tty = isatty(STDERR_FILENO) == 1;
  } else {
    sinks.push_back(std::make_shared<BelowWarnSink>(std::make_shared<spdlog::sinks::ansicolor_stdout_sink_mt>()));
    auto err = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
    err->set_level(spdlog::level::warn);
    sinks.push_back(err);
    line.stream = stdout;
    line.tty = isatty(STDOUT_FILENO) == 1;
  }
  auto both = std::make_shared<StatusAwareSink>(sinks);
  auto logger = std::make_shared<spdlog::logger>("flowrun", both);
  logger->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

void add_log_file(const std::string& path) {
  std::shared_ptr<spdlog::sinks::basic_file_sink_mt> file;
  try {
    file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    throw std::runtime_error("cannot write the log file " + path + ": " + e.what());
  }
  file->set_pattern("%Y-%m-%d %H:%M:%S.%e %-5l %v");
  spdlog::default_logger()->sinks().push_back(file);
}

const char* log_levels_help() { return "trace|debug|info|warn|error|off"; }

}  // namespace flowrun
