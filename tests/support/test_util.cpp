#include "test_util.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "stages/builtin.hpp"
#include "toy_stages.hpp"

namespace flowrun::testing {
namespace fs = std::filesystem;

Registry& test_registry() {
  static Registry registry = [] {
    Registry r;
    register_builtin_stages(r);
    register_toy_stages(r);
    return r;
  }();
  return registry;
}

Description describe(const std::string& json_text, const std::vector<std::string>& overrides) {
  nlohmann::json doc = parse_description_json(json_text, "test.json");
  apply_overrides(doc, overrides);
  static PackLoader loader;
  return validate_description(doc, test_registry(), loader, "test.json", fs::current_path().string());
}

std::unique_ptr<Stage> make_stage(const std::string& plugin, const std::string& params_json, std::uint64_t seed,
                                  const std::string& device) {
  const PluginInfo* info = test_registry().find(plugin);
  if (!info) throw std::invalid_argument("no plugin " + plugin);
  StageArgs args;
  args.node_id = "n";
  args.params = validate_params(*info, nlohmann::json::parse(params_json), plugin);
  args.seed = seed;
  args.device = device;
  args.random = RandomStreams(seed, args.node_id);
  return info->create(args);
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "flowrun-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string file = path_ + "/" + name;
  std::ofstream(file, std::ios::binary) << content;
  return file;
}

namespace {

// The build's path, or the environment's where the test binary runs from elsewhere
// (the device bundle: bench/device/make_bundle.sh).
std::string from_env_or(const char* name, const char* built) {
  const char* value = std::getenv(name);
  return value && *value ? value : built;
}

}  // namespace

std::string flowrun_binary() { return from_env_or("FLOWRUN_TEST_BINARY", FLOWRUN_BINARY); }
std::string source_dir() { return from_env_or("FLOWRUN_TEST_SOURCE_DIR", FLOWRUN_SOURCE_DIR); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool has_nvidia_device() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 6 && name.rfind("nvidia", 0) == 0 && name.find_first_not_of("0123456789", 6) == std::string::npos)
      return true;
  }
  return false;
}

CommandResult run_flowrun(const std::vector<std::string>& args, int signal_after_ms, int signal, double timeout_s,
                          const std::vector<std::string>& extra_env) {
  TempDir capture;
  const std::string out_path = capture.path() + "/out";
  const std::string err_path = capture.path() + "/err";
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    // The test runner may block signals in this thread: give the child a clean mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const std::string& kv : extra_env) putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> argv;
    std::string binary = flowrun_binary();
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (std::string& a : copies) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  bool signalled = false;
  int status = 0;
  while (true) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (signal_after_ms >= 0 && !signalled && elapsed * 1000 >= signal_after_ms) {
      kill(pid, signal);
      signalled = true;
    }
    if (elapsed > timeout_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      CommandResult r;
      r.exit_code = -1;
      r.seconds = elapsed;
      r.out = read_file(out_path);
      r.err = read_file(err_path) + "\n[test: killed after timeout]";
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CommandResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

}  // namespace flowrun::testing
