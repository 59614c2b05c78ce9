// Helpers shared by the test files: descriptions from inline JSON, temporary
// folders, and running the flowrun binary as a user would.
#pragma once

#include <csignal>
#include <string>
#include <vector>

#include "flowrun/description.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"
#include "flowrun/stage.hpp"

namespace flowrun::testing {

// A registry with the built-in and the toy stages.
Registry& test_registry();

// Validates inline JSON (comments allowed) against test_registry().
Description describe(const std::string& json_text, const std::vector<std::string>& overrides = {});

// A stage of `plugin` built from `params_json` (validated), for calling directly.
std::unique_ptr<Stage> make_stage(const std::string& plugin, const std::string& params_json = "{}",
                                  std::uint64_t seed = 0, const std::string& device = "cpu");

// Collects what an ordered stage emits.
struct RecordingEmitter : Emitter {
  struct Emitted {
    int port;
    std::shared_ptr<const Payload> payload;
    std::uint64_t epoch, index;
    Lease lease;
  };
  std::vector<Emitted> emitted;
  void emit(int port, std::shared_ptr<const Payload> payload, std::uint64_t epoch, std::uint64_t index,
            Lease lease) override {
    emitted.push_back({port, std::move(payload), epoch, index, std::move(lease)});
  }
};

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& content) const;  // returns the file's path

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // 128+N when killed by signal N, as a shell reports it
  std::string out;
  std::string err;
  double seconds = 0;
};

// Runs the flowrun binary with `args`. With `signal_after_ms` >= 0, sends `signal`
// that many milliseconds after the start. Kills it after `timeout_s` (exit_code -1).
CommandResult run_flowrun(const std::vector<std::string>& args, int signal_after_ms = -1, int signal = SIGINT,
                          double timeout_s = 60, const std::vector<std::string>& extra_env = {});

// The flowrun binary and the source tree: the build's, unless FLOWRUN_TEST_BINARY or
// FLOWRUN_TEST_SOURCE_DIR say otherwise (a relocated test binary: the device bundle).
std::string flowrun_binary();
std::string source_dir();
std::string read_file(const std::string& path);

// Whether this machine has a GPU's device file (/dev/nvidia0, or another index where a
// container is given one GPU of several): for tests that run the binary and have no
// LibTorch to ask.
bool has_nvidia_device();

}  // namespace flowrun::testing
