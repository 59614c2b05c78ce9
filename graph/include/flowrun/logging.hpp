// Logging for flowrun and its stages:  log::info("wrote ", n, " records to ", path);
//
// Arguments are streamed (operator<<), not formatted with fmt: LibTorch ships its
// own fmt, which must never meet Debian's spdlog/fmt in one translation unit, so
// spdlog stays inside logging.cpp and this header includes neither.
// The command line configures the sinks: a concise "12:04:05.123 info  message",
// warnings and errors to stderr, the rest to stdout.
#pragma once

#include <sstream>
#include <string>

namespace flowrun {
namespace log {

enum class Level { trace, debug, info, warn, error, off };

bool enabled(Level level);
void write(Level level, const std::string& message);

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

template <typename... Parts>
void trace(const Parts&... parts) {
  if (enabled(Level::trace)) write(Level::trace, concat(parts...));
}
template <typename... Parts>
void debug(const Parts&... parts) {
  if (enabled(Level::debug)) write(Level::debug, concat(parts...));
}
template <typename... Parts>
void info(const Parts&... parts) {
  if (enabled(Level::info)) write(Level::info, concat(parts...));
}
template <typename... Parts>
void warn(const Parts&... parts) {
  if (enabled(Level::warn)) write(Level::warn, concat(parts...));
}
template <typename... Parts>
void error(const Parts&... parts) {
  if (enabled(Level::error)) write(Level::error, concat(parts...));
}

// "3.14" for fixed(3.14159, 2): numbers in log lines without format strings.
std::string fixed(double value, int decimals);

// A live status line at the bottom of a terminal ("epoch 1/3  step 420/1170 ... ETA
// 4:12"): redrawn in place, kept below the log lines printed meanwhile. Only when
// standard output is a terminal (interactive()); elsewhere status() does nothing and
// the periodic log lines are the record. clear_status() removes it.
bool interactive();
void status(const std::string& text);
void clear_status();

}  // namespace log

// Where log lines and the status line go: info and below to standard output, warnings
// and errors to standard error; or everything to standard error, when standard output
// carries a command's data (flowrun predict's JSON lines).
enum class LogOutput { StdoutAndStderr, StderrOnly };

// Installs flowrun's sinks and pattern. `level` is one of trace, debug, info, warn,
// error, off; returns false (and changes nothing) for anything else.
bool configure_logging(const std::string& level, LogOutput output = LogOutput::StdoutAndStderr);
// Also writes every log line (without colours) to `path`, appending; after
// configure_logging. Throws std::runtime_error naming the file when it cannot be opened.
void add_log_file(const std::string& path);
const char* log_levels_help();  // "trace|debug|info|warn|error|off"

}  // namespace flowrun
