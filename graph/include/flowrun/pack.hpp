// Plugin packs: shared libraries that register more plugins. A pack defines one
// entry point with FLOWRUN_PLUGIN_PACK:
//
//   static void register_plugins(flowrun::Registry& registry) { registry.add(...); }
//   FLOWRUN_PLUGIN_PACK("mypack", "1.0", register_plugins)
//
// The loader checks kPackAbiVersion before calling anything else: a pack built
// against other flowrun headers (Stage or PluginInfo laid out differently) is refused
// with a message naming both versions, instead of crashing. Bump the version when a
// public header in flowrun/ changes a class layout or virtual table.
#pragma once

#include <string>
#include <vector>

namespace flowrun {

class Registry;

// 2: PluginInfo::check, Stage::item_rng(epoch, index), Batch::fence (2026-12-01).
// 3: RunControl::wake, OrderedStage::waiting and woken (2026-12-02).
// 4: PluginInfo::own_thread (2026-12-02).
// 5: PluginInfo::retired_ports (2026-12-06).
constexpr int kPackAbiVersion = 5;

struct PackEntry {
  int abi_version;        // kPackAbiVersion of the headers the pack was built with; always first
  int cxx11_string_abi;   // _GLIBCXX_USE_CXX11_ABI of the pack's build
  const char* name;
  const char* version;
  void (*register_plugins)(Registry&);
};

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define FLOWRUN_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define FLOWRUN_CXX11_ABI 0
#endif

#define FLOWRUN_PACK_ENTRY_SYMBOL "flowrun_pack_entry"
#define FLOWRUN_PLUGIN_PACK(pack_name, pack_version, register_fn)                                 \
  extern "C" __attribute__((visibility("default"))) const ::flowrun::PackEntry* flowrun_pack_entry() { \
    static const ::flowrun::PackEntry entry{::flowrun::kPackAbiVersion, FLOWRUN_CXX11_ABI, pack_name,  \
                                            pack_version, register_fn};                            \
    return &entry;                                                                                 \
  }

struct LoadedPack {
  std::string name;
  std::string version;
  std::string path;
  std::vector<std::string> plugins;  // names it registered
};

// Finds, opens and registers packs. Opened libraries stay loaded for the life of the
// process (their stages' code lives there). Every failure throws std::runtime_error
// with its own message: no such file, not a shared library, no entry symbol, ABI
// version mismatch, plugin name clash.
class PackLoader {
 public:
  // `spec` is a path (absolute, or relative to `base_dir`) or a bare pack name looked
  // up on FLOWRUN_PLUGIN_PATH as lib<name>.so or <name>.so. Loading the same file
  // twice is a no-op that returns the first load.
  const LoadedPack& load(const std::string& spec, const std::string& base_dir, Registry& registry);
  // Loads every *.so found in the FLOWRUN_PLUGIN_PATH folders.
  void load_search_path(Registry& registry);

  const std::vector<LoadedPack>& loaded() const { return loaded_; }
  static std::vector<std::string> search_path();  // FLOWRUN_PLUGIN_PATH, split on ':'

 private:
  std::string resolve(const std::string& spec, const std::string& base_dir) const;
  std::vector<LoadedPack> loaded_;
};

}  // namespace flowrun
