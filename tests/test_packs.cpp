// Plugin packs: loading by path and by name, and the distinct errors for a missing
// file, a library that is not a pack, a wrong ABI version, and a name clash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "flowrun/errors.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/pipeline.hpp"
#include "flowrun/registry.hpp"
#include "stages/builtin.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

std::string error_of(const std::string& spec, const std::string& base_dir = "") {
  Registry registry;
  register_builtin_stages(registry);
  PackLoader loader;
  try {
    loader.load(spec, base_dir, registry);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded without error)";
}

void expect_contains(const std::string& text, const std::string& fragment) {
  EXPECT_NE(text.find(fragment), std::string::npos) << "expected '" << fragment << "' in: " << text;
}

TEST(Packs, LoadsByPathAndRegistersWithOrigin) {
  Registry registry;
  register_builtin_stages(registry);
  PackLoader loader;
  const LoadedPack& pack = loader.load(DEBUG_PACK_PATH, "", registry);
  EXPECT_EQ(pack.name, "debug");
  EXPECT_EQ(pack.plugins, (std::vector<std::string>{"debug.count", "debug.log"}));
  ASSERT_NE(registry.find("debug.log"), nullptr);
  EXPECT_EQ(registry.find("debug.log")->origin, std::filesystem::canonical(DEBUG_PACK_PATH).string());
  // Loading the same file again is a no-op, not a clash.
  EXPECT_NO_THROW(loader.load(DEBUG_PACK_PATH, "", registry));
}

TEST(Packs, LoadsByNameFromPluginPathAndRunsInAPipeline) {
  const std::string dir = std::filesystem::path(DEBUG_PACK_PATH).parent_path().string();
  setenv("FLOWRUN_PLUGIN_PATH", ("/nonexistent:" + dir).c_str(), 1);
  Registry registry;
  register_builtin_stages(registry);
  PackLoader loader;
  nlohmann::json doc = parse_description_json(R"({"name": "p", "plugins": ["flowrun_debug"],
    "nodes": [{"id": "src", "plugin": "counter_source", "params": {"count": 50}},
              {"id": "peek", "plugin": "debug.log", "params": {"every": 10}},
              {"id": "count", "plugin": "debug.count"}],
    "edges": ["src -> peek -> count"]})", "p.json");
  Description d = validate_description(doc, registry, loader, "p.json", "");
  unsetenv("FLOWRUN_PLUGIN_PATH");
  Pipeline pipeline(std::move(d));
  const RunReport report = pipeline.run();
  EXPECT_EQ(report.reason, StopReason::Finished);
  EXPECT_EQ(report.nodes[1].items, 50u);
}

TEST(Packs, MissingFile) {
  expect_contains(error_of("/nonexistent/libnothing.so"), "plugin pack file not found: /nonexistent/libnothing.so");
  unsetenv("FLOWRUN_PLUGIN_PATH");
  expect_contains(error_of("nothing"), "FLOWRUN_PLUGIN_PATH is not set");
  setenv("FLOWRUN_PLUGIN_PATH", "/nonexistent", 1);
  expect_contains(error_of("nothing"), "not found on FLOWRUN_PLUGIN_PATH (tried /nonexistent/libnothing.so");
  unsetenv("FLOWRUN_PLUGIN_PATH");
}

TEST(Packs, NotASharedLibrary) {
  TempDir dir;
  const std::string fake = dir.write("libfake.so", "this is text, not ELF");
  expect_contains(error_of(fake), "cannot load plugin pack");
}

TEST(Packs, MissingEntrySymbol) {
  expect_contains(error_of(NO_ENTRY_PACK_PATH), "has no entry symbol 'flowrun_pack_entry'");
}

TEST(Packs, WrongAbiVersion) {
  const std::string error = error_of(WRONG_ABI_PACK_PATH);
  expect_contains(error, "was built for flowrun plugin ABI 999");
  expect_contains(error, "this flowrun has ABI " + std::to_string(kPackAbiVersion));
}

TEST(Packs, NameClashRefusesTheWholePack) {
  Registry registry;
  register_builtin_stages(registry);
  PackLoader loader;
  try {
    loader.load(CLASH_PACK_PATH, "", registry);
    FAIL() << "clash not detected";
  } catch (const std::runtime_error& e) {
    expect_contains(e.what(), "registers 'identity', a name already taken by built-in");
  }
  EXPECT_EQ(registry.find("clash.fine"), nullptr) << "a refused pack must register nothing";
  EXPECT_EQ(registry.find("identity")->origin, "built-in");
}

TEST(Packs, DescriptionErrorsPointAtThePluginsEntry) {
  try {
    describe(R"({"name": "p", "plugins": ["./missing_pack.so"], "nodes": [{"id": "s", "plugin": "counter_source"},
      {"id": "c", "plugin": "collect"}], "edges": ["s -> c"]})");
    FAIL();
  } catch (const DescriptionError& e) {
    ASSERT_FALSE(e.problems().empty());
    EXPECT_EQ(e.problems()[0].pointer, "/plugins/0");
    expect_contains(e.problems()[0].message, "plugin pack file not found");
  }
}

}  // namespace
}  // namespace flowrun::testing
