// The plugin registry: name -> PluginInfo. Built-ins are added by explicit calls
// (register_builtin_stages), plugin packs by the pack loader; nothing registers
// itself from a static initializer, so what is registered is always visible in code.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "flowrun/plugin.hpp"

namespace flowrun {

class Registry {
 public:
  // Checks the declaration (name syntax, ports per role, factory present) and adds it.
  // Throws std::invalid_argument naming the plugin; a name clash names both origins.
  void add(PluginInfo info);

  const PluginInfo* find(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  std::size_t size() const { return plugins_.size(); }

 private:
  std::map<std::string, PluginInfo> plugins_;
};

}  // namespace flowrun
