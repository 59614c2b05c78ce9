// Seeded mutations of every shipped description, through the JSON parser, --set and
// validation, the path `flowrun validate` and every run take. Each mutated description
// must be accepted or refused with a DescriptionError that says something (exit 0 or 2
// for the binary); any other exception, a signal or a hang is a defect, reported with
// the description that caused it. A seeded mutation test rather than libFuzzer: it runs
// with the compiler the project already builds with, in the ordinary suite, and a failure
// reproduces from its seed.
//
// A hang is caught by an alarm per case (30 s), which prints the case like a crash.
// Budget: FLOWRUN_FUZZ_SECONDS (default 15 s; ctest's timeout is 120 s). Seeds:
// FLOWRUN_FUZZ_SEED (default 1); case k uses seed + k, so a reported case reruns alone
// with FLOWRUN_FUZZ_SEED=<its seed> FLOWRUN_FUZZ_CASES=1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "flowrun/errors.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// --- what a crash prints: the case being checked, kept where a signal handler can reach it ---

char g_current_case[64 * 1024];

void on_fatal_signal(int sig) {
  const char header[] = "\nfuzz: fatal signal (SIGALRM: a hang) while validating this case:\n";
  ssize_t ignored = ::write(STDERR_FILENO, header, sizeof header - 1);
  ignored = ::write(STDERR_FILENO, g_current_case, std::strlen(g_current_case));
  (void)ignored;
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void remember_case(const std::string& text) {
  const std::size_t n = std::min(text.size(), sizeof g_current_case - 1);
  std::memcpy(g_current_case, text.data(), n);
  g_current_case[n] = '\0';
}

struct FatalSignalReport {
  FatalSignalReport() {
    for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL, SIGALRM}) std::signal(sig, on_fatal_signal);
  }
  ~FatalSignalReport() {
    ::alarm(0);
    for (int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGBUS, SIGILL, SIGALRM}) std::signal(sig, SIG_DFL);
  }
};

long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtol(v, nullptr, 10) : fallback;
}

std::vector<std::string> shipped_descriptions() {
  std::vector<std::string> paths;
  for (const auto& e : fs::directory_iterator(source_dir() + "/pipelines"))
    if (e.path().extension() == ".json") paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  return paths;
}

// --- mutations ---

class Mutator {
 public:
  Mutator(std::uint64_t seed, const json& doc) : rng_(seed), doc_(doc) {
    collect(doc_, "");
    if (doc_.contains("nodes") && doc_["nodes"].is_array())
      for (const json& n : doc_["nodes"])
        if (n.is_object() && n.contains("id") && n["id"].is_string()) ids_.push_back(n["id"].get<std::string>());
    plugins_ = test_registry().names();
  }

  // A few structural and value changes to the document.
  json mutate_document() {
    json out = doc_;
    const int changes = 1 + pick(3);
    for (int i = 0; i < changes; ++i) mutate_once(out);
    return out;
  }

  // The document as text with a few bytes changed (the parser's paths).
  std::string mutate_text(const std::string& text) {
    std::string out = text;
    switch (pick(4)) {
      case 0: out.resize(static_cast<std::size_t>(pick(static_cast<int>(out.size())))); break;
      case 1: {
        static const char kBytes[] = "{}[],:\"\\/*#\n\x01\xff";
        out.insert(out.begin() + pick(static_cast<int>(out.size())), kBytes[pick(sizeof kBytes - 1)]);
        break;
      }
      case 2:
        if (!out.empty()) out.erase(out.begin() + pick(static_cast<int>(out.size())));
        break;
      default: {
        const std::size_t at = static_cast<std::size_t>(pick(static_cast<int>(out.size())));
        out.insert(at, random_value().dump());
      }
    }
    return out;
  }

  // --set PATH=VALUE arguments: paths into the document (by node id) and made-up ones.
  std::vector<std::string> overrides() {
    std::vector<std::string> out;
    const int n = 1 + pick(2);
    for (int i = 0; i < n; ++i) {
      std::string path;
      switch (pick(5)) {
        case 0: path = random_node_path(); break;
        case 1: path = random_node_path() + "." + random_word(); break;
        case 2: path = random_word() + (pick(2) ? "." + random_word() : ""); break;
        case 3: path = std::vector<std::string>{"", ".", "..", "nodes", "nodes.", "nodes..params", "edges.0",
                                                "edges.999", "nodes.0.plugin", "seed.x", "nodes.-1"}[pick(11)];
          break;
        default: path = pointer_to_dots(pointers_[pick(static_cast<int>(pointers_.size()))]);
      }
      std::string value = pick(3) ? random_value().dump() : random_word();
      if (pick(8) == 0) value = std::vector<std::string>{"", "{", "[1,", "\"", "nul", "1e999", "-"}[pick(7)];
      out.push_back(pick(20) == 0 ? path : path + "=" + value);
    }
    return out;
  }

 private:
  int pick(int n) { return n <= 0 ? 0 : static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }

  void collect(const json& v, const std::string& pointer) {
    pointers_.push_back(pointer);
    if (v.is_object())
      for (const auto& item : v.items()) collect(item.value(), pointer + "/" + json_pointer_escape(item.key()));
    else if (v.is_array())
      for (std::size_t i = 0; i < v.size(); ++i) collect(v[i], pointer + "/" + std::to_string(i));
  }

  static std::string json_pointer_escape(const std::string& key) {
    std::string out;
    for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    return out;
  }

  // "/nodes/3/params/size" -> "nodes.ID.params.size", as a user writes --set paths.
  std::string pointer_to_dots(const std::string& pointer) const {
    std::string out;
    std::vector<std::string> parts;
    std::size_t from = 1;
    while (from <= pointer.size() && !pointer.empty()) {
      const std::size_t slash = pointer.find('/', from);
      parts.push_back(pointer.substr(from, slash == std::string::npos ? std::string::npos : slash - from));
      if (slash == std::string::npos) break;
      from = slash + 1;
    }
    for (std::size_t i = 0; i < parts.size(); ++i) {
      std::string part = parts[i];
      if (i == 1 && parts[0] == "nodes") {
        const std::size_t index = std::strtoul(part.c_str(), nullptr, 10);
        if (index < ids_.size()) part = ids_[index];
      }
      out += (out.empty() ? "" : ".") + part;
    }
    return out;
  }

  std::string random_node_path() {
    if (ids_.empty()) return "nodes.x";
    const std::string id = ids_[static_cast<std::size_t>(pick(static_cast<int>(ids_.size())))];
    switch (pick(4)) {
      case 0: return "nodes." + id + ".plugin";
      case 1: return "nodes." + id + ".params";
      case 2: return "nodes." + id + ".concurrency";
      default: return "nodes." + id + ".params." + random_word();
    }
  }

  std::string random_word() {
    static const std::vector<std::string> words = {
        "size", "paths", "epochs", "batch_size", "lr", "model", "strategy", "mean", "std", "prob", "classes",
        "per_class_limit", "scale", "ratio", "padding", "unfreeze_at", "layer_decay", "x", "", "-", "0", "é",
        "eval", "test", "train", "model", "state", "data", "batch", "plugin", "params", "id"};
    switch (pick(4)) {
      case 0: return plugins_.empty() ? "train" : plugins_[static_cast<std::size_t>(pick(static_cast<int>(plugins_.size())))];
      case 1: return ids_.empty() ? "train" : ids_[static_cast<std::size_t>(pick(static_cast<int>(ids_.size())))];
      default: return words[static_cast<std::size_t>(pick(static_cast<int>(words.size())))];
    }
  }

  json random_value() {
    switch (pick(22)) {
      case 0: return "";
      case 1: return 0;
      case 2: return -1;
      case 3: return 1e300;
      case 4: return -1e300;
      case 5: return 0.5;
      case 6: return true;
      case 7: return nullptr;
      case 8: return json::array();
      case 9: return json::object();
      case 10: return json::array({""});
      case 11: return json::array({0, -1, 1e300});
      case 12: return std::numeric_limits<std::int64_t>::max();
      case 13: return std::numeric_limits<std::uint64_t>::max();
      case 14: return std::numeric_limits<std::int64_t>::min();
      case 15: return "cuda:99";
      case 16: return random_word();
      case 17: return random_word() + " -> " + random_word();
      case 18: return random_word() + "." + random_word() + " -> " + random_word() + "." + random_word();
      case 19: return std::vector<std::string>{"->", " -> ", "a..b", ".", "a -> ", " -> b", "a.b.c -> d", "x -> x"}[pick(8)];
      case 20: return json{{"id", random_word()}, {"plugin", random_word()}};
      default: return 1 + pick(100000);
    }
  }

  void mutate_once(json& doc) {
    const std::string& pointer = pointers_[static_cast<std::size_t>(pick(static_cast<int>(pointers_.size())))];
    const json::json_pointer where(pointer);
    if (!doc.contains(where)) return;  // removed by an earlier change
    json& target = doc[where];
    const bool has_parent = !pointer.empty();
    switch (pick(6)) {
      case 0:
        if (has_parent) {
          json& parent = doc[where.parent_pointer()];
          const std::string key = where.back();
          if (parent.is_object()) parent.erase(key);
          else if (parent.is_array()) parent.erase(static_cast<std::size_t>(std::strtoul(key.c_str(), nullptr, 10)));
          return;
        }
        [[fallthrough]];
      case 1:
        if (target.is_array() && !target.empty()) {
          target.push_back(target[static_cast<std::size_t>(pick(static_cast<int>(target.size())))]);
          return;
        }
        [[fallthrough]];
      case 2:
        if (target.is_object()) {
          target[random_word()] = random_value();
          return;
        }
        [[fallthrough]];
      case 3:
        if (target.is_string()) {
          std::string s = target.get<std::string>();
          switch (pick(4)) {
            case 0: s.clear(); break;
            case 1: s = s.substr(0, static_cast<std::size_t>(pick(static_cast<int>(s.size()) + 1))); break;
            case 2: s += pick(2) ? ".x" : " -> " + random_word(); break;
            default: s = random_word();
          }
          target = s;
          return;
        }
        [[fallthrough]];
      default: target = random_value();
    }
  }

  std::mt19937_64 rng_;
  json doc_;
  std::vector<std::string> pointers_;
  std::vector<std::string> ids_;
  std::vector<std::string> plugins_;
};

// Validates one case; anything but acceptance or a DescriptionError with a message fails.
// Returns whether it was accepted.
bool expect_clean_outcome(const std::string& text, const std::vector<std::string>& overrides, const std::string& label) {
  std::string shown = label + "\n--set:";
  for (const std::string& o : overrides) shown += " '" + o + "'";
  shown += "\n" + text + "\n";
  remember_case(shown);
  ::alarm(30);  // a hang ends in SIGALRM, which prints the case (ctest's timeout would not)
  const auto start = std::chrono::steady_clock::now();
  bool accepted = false;
  try {
    describe(text, overrides);
    accepted = true;
  } catch (const DescriptionError& e) {
    EXPECT_GT(std::strlen(e.what()), 0u) << "an empty message for:\n" << shown;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a DescriptionError (the binary would exit 1, not 2): " << e.what() << "\n" << shown;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0) << "validation took " << seconds << " s (a hang?) for:\n" << shown;
  return accepted;
}

TEST(DescriptionFuzz, MutatedShippedDescriptionsAreAcceptedOrRefusedWithAMessage) {
  FatalSignalReport report;
  const long budget_s = env_number("FLOWRUN_FUZZ_SECONDS", 15);
  const long max_cases = env_number("FLOWRUN_FUZZ_CASES", -1);
  const std::uint64_t first_seed = static_cast<std::uint64_t>(env_number("FLOWRUN_FUZZ_SEED", 1));
  std::vector<std::pair<std::string, json>> docs;
  for (const std::string& path : shipped_descriptions()) docs.emplace_back(path, parse_description_json(read_file(path), path));
  ASSERT_GE(docs.size(), 10u) << "the shipped pipelines were not found under " << source_dir() << "/pipelines";

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(budget_s);
  long cases = 0, accepted = 0;
  while ((max_cases < 0 && std::chrono::steady_clock::now() < deadline) || cases < max_cases) {
    const std::uint64_t seed = first_seed + static_cast<std::uint64_t>(cases);
    const auto& [path, doc] = docs[seed % docs.size()];
    Mutator m(seed, doc);
    const std::string label = "case seed " + std::to_string(seed) + " from " + fs::path(path).filename().string();
    switch (seed / docs.size() % 3) {
      case 0: accepted += expect_clean_outcome(m.mutate_document().dump(2), {}, label + " (document)"); break;
      case 1: accepted += expect_clean_outcome(doc.dump(2), m.overrides(), label + " (--set)"); break;
      default: accepted += expect_clean_outcome(m.mutate_text(doc.dump(2)), {}, label + " (text)");
    }
    ++cases;
    if (::testing::Test::HasFailure()) break;  // one reproducible case is enough to act on
  }
  std::cout << "fuzz: " << cases << " mutated descriptions from seed " << first_seed << " (" << accepted
            << " accepted, the rest refused with a message)\n";
  EXPECT_GT(cases, 100) << "too few cases ran to mean anything";
}

// The cases found so far, kept as regression tests through the binary itself: exit 2
// and a message naming the node, never a signal.
TEST(DescriptionFuzz, FoundCasesExitTwoWithAMessage) {
  const std::string quickstart = source_dir() + "/pipelines/quickstart.json";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"nodes.train_data.plugin=\"\""}, "/nodes/0/plugin: empty plugin name"},
      {{"nodes.decode.id=\"\""}, "empty node id"},
      {{"seed=1e999"}, "number overflow parsing '1e999'"},
  };
  for (const auto& [sets, expected] : cases) {
    std::vector<std::string> args = {"validate", quickstart};
    for (const std::string& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    const CommandResult r = run_flowrun(args);
    EXPECT_EQ(r.exit_code, 2) << sets.front() << "\n" << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << sets.front() << "\n" << r.err;
  }
  // A number past double's range inside the file.
  TempDir dir;
  const CommandResult r = run_flowrun({"validate", dir.write("big.json", "{\"name\": \"x\", \"seed\": 1e999}")});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("big.json: malformed JSON: number overflow parsing '1e999'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flowrun::testing
