#include "flowrun/registry.hpp"

#include <stdexcept>

namespace flowrun {
namespace {

bool valid_plugin_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return false;
  return true;
}

void check_ports(const PluginInfo& info) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("plugin '" + info.name + "': " + why);
  };
  switch (info.role) {
    case Role::Source:
      if (!info.inputs.empty() || info.outputs.size() != 1) fail("a source has no inputs and one output");
      break;
    case Role::Map:
      if (info.inputs.size() != 1 || info.outputs.size() != 1) fail("a map stage has one input and one output");
      break;
    case Role::Ordered:
      if (info.inputs.empty()) fail("an ordered stage has at least one input");
      break;
  }
  for (const PortSpec& p : info.inputs) {
    if (p.kind == kSameKind) fail("input '" + p.name + "' cannot have kind 'same'");
  }
  for (const PortSpec& p : info.outputs) {
    if (p.kind.find('|') != std::string::npos) fail("output '" + p.name + "' must have one kind, not '" + p.kind + "'");
    if (p.kind == kAnyKind) fail("output '" + p.name + "' cannot have kind 'any' (use 'same' to pass the input kind on)");
    if (p.kind == kSameKind && info.inputs.empty()) fail("output '" + p.name + "' has kind 'same' but there is no input");
  }
  std::vector<const PortSpec*> all;
  for (const PortSpec& p : info.inputs) all.push_back(&p);
  for (const PortSpec& p : info.outputs) all.push_back(&p);
  for (const PortSpec* p : all) {
    if (p->name.empty() || p->kind.empty() || p->doc.empty()) fail("every port needs a name, a kind and a doc");
  }
}

}  // namespace

void Registry::add(PluginInfo info) {
  if (!valid_plugin_name(info.name)) {
    throw std::invalid_argument("plugin name '" + info.name + "' is not made of a-z, 0-9, '_' and '.'");
  }
  if (info.summary.empty()) throw std::invalid_argument("plugin '" + info.name + "' has no summary");
  if (!info.create) throw std::invalid_argument("plugin '" + info.name + "' has no factory");
  check_ports(info);
  auto existing = plugins_.find(info.name);
  if (existing != plugins_.end()) {
    throw std::invalid_argument("plugin name clash: '" + info.name + "' from " + info.origin +
                                " is already registered by " + existing->second.origin);
  }
  std::string name = info.name;
  plugins_.emplace(std::move(name), std::move(info));
}

const PluginInfo* Registry::find(const std::string& name) const {
  auto it = plugins_.find(name);
  return it == plugins_.end() ? nullptr : &it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, info] : plugins_) out.push_back(name);
  return out;
}

}  // namespace flowrun
