// The only file that talks to spdlog (see logging.hpp for why).
#include "flowrun/logging.hpp"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>

namespace flowrun {
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

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, value);
  return buffer;
}

}  // namespace log

namespace {

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

bool configure_logging(const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  // from_str answers "off" for any unknown word; accept only a real "off".
  if (parsed == spdlog::level::off && level != "off") return false;
  auto out = std::make_shared<BelowWarnSink>(std::make_shared<spdlog::sinks::ansicolor_stdout_sink_mt>());
  auto err = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
  err->set_level(spdlog::level::warn);
  auto logger = std::make_shared<spdlog::logger>("flowrun", spdlog::sinks_init_list{out, err});
  logger->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return true;
}

const char* log_levels_help() { return "trace|debug|info|warn|error|off"; }

}  // namespace flowrun
