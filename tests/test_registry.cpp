// Every built-in plugin documents itself completely: `flowrun plugins NAME` and
// docs/plugins.md are generated from these declarations, so a gap here is a gap
// in the docs. Also the registry's own checks on declarations.
#include <gtest/gtest.h>

#include <cmath>

#include "flowrun/registry.hpp"
#include "stages/builtin.hpp"

namespace flowrun {
namespace {

TEST(Registry, EveryBuiltinPluginIsFullyDocumented) {
  Registry registry;
  register_builtin_stages(registry);
  ASSERT_GE(registry.size(), 3u);
  for (const std::string& name : registry.names()) {
    const PluginInfo& p = *registry.find(name);
    EXPECT_FALSE(p.summary.empty()) << name;
    EXPECT_NE(p.description.find("{\"id\""), std::string::npos) << name << ": description needs a JSON example";
    for (const PortSpec& port : p.inputs) EXPECT_FALSE(port.doc.empty()) << name << "." << port.name;
    for (const PortSpec& port : p.outputs) EXPECT_FALSE(port.doc.empty()) << name << "." << port.name;
    for (const ParamSpec& spec : p.params.specs()) {
      const std::string where = name + " parameter " + spec.name();
      EXPECT_GE(spec.doc().size(), 10u) << where << ": doc too short to say what it means";
      const bool numeric = spec.type() == ParamType::Int || spec.type() == ParamType::Float ||
                           spec.type() == ParamType::IntList || spec.type() == ParamType::FloatList;
      if (numeric) {
        EXPECT_FALSE(std::isinf(spec.lower()) && std::isinf(spec.upper())) << where << ": numbers need a range";
      }
      if (spec.type() == ParamType::Choice) {
        EXPECT_GE(spec.choices().size(), 2u) << where;
      }
    }
  }
}

PluginInfo minimal(const std::string& name, Role role) {
  PluginInfo p;
  p.name = name;
  p.summary = "s";
  p.role = role;
  p.create = [](const StageArgs&) { return std::unique_ptr<Stage>(); };
  return p;
}

TEST(Registry, RefusesMalformedDeclarations) {
  Registry registry;
  EXPECT_THROW(registry.add(minimal("Bad Name", Role::Source)), std::invalid_argument);
  PluginInfo source_with_input = minimal("src", Role::Source);
  source_with_input.inputs = {{"in", "x", "doc"}};
  source_with_input.outputs = {{"out", "x", "doc"}};
  EXPECT_THROW(registry.add(source_with_input), std::invalid_argument);
  PluginInfo map_without_doc = minimal("map", Role::Map);
  map_without_doc.inputs = {{"in", "x", ""}};
  map_without_doc.outputs = {{"out", "x", "doc"}};
  EXPECT_THROW(registry.add(map_without_doc), std::invalid_argument);
  PluginInfo any_output = minimal("any_out", Role::Map);
  any_output.inputs = {{"in", "x", "doc"}};
  any_output.outputs = {{"out", kAnyKind, "doc"}};
  EXPECT_THROW(registry.add(any_output), std::invalid_argument);

  PluginInfo ok = minimal("fine", Role::Source);
  ok.outputs = {{"out", "x", "doc"}};
  registry.add(ok);
  try {
    registry.add(ok);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("plugin name clash: 'fine'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace flowrun
