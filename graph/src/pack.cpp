#include "flowrun/pack.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "flowrun/registry.hpp"

namespace flowrun {
namespace fs = std::filesystem;

namespace {

bool looks_like_path(const std::string& spec) {
  return spec.find('/') != std::string::npos || (spec.size() > 3 && spec.compare(spec.size() - 3, 3, ".so") == 0);
}

}  // namespace

std::vector<std::string> PackLoader::search_path() {
  std::vector<std::string> dirs;
  const char* env = std::getenv("FLOWRUN_PLUGIN_PATH");
  if (!env) return dirs;
  std::string value = env;
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t end = value.find(':', start);
    if (end == std::string::npos) end = value.size();
    if (end > start) dirs.push_back(value.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

std::string PackLoader::resolve(const std::string& spec, const std::string& base_dir) const {
  if (looks_like_path(spec)) {
    fs::path path(spec);
    if (path.is_relative() && !base_dir.empty()) path = fs::path(base_dir) / path;
    if (!fs::exists(path)) throw std::runtime_error("plugin pack file not found: " + path.string());
    return fs::canonical(path).string();
  }
  std::string tried;
  for (const std::string& dir : search_path()) {
    for (const std::string& file : {"lib" + spec + ".so", spec + ".so"}) {
      fs::path candidate = fs::path(dir) / file;
      if (fs::exists(candidate)) return fs::canonical(candidate).string();
      tried += (tried.empty() ? "" : ", ") + candidate.string();
    }
  }
  if (tried.empty()) {
    throw std::runtime_error("plugin pack '" + spec +
                             "' not found: FLOWRUN_PLUGIN_PATH is not set (give a path to the .so, or set "
                             "FLOWRUN_PLUGIN_PATH to the folders holding packs)");
  }
  throw std::runtime_error("plugin pack '" + spec + "' not found on FLOWRUN_PLUGIN_PATH (tried " + tried + ")");
}

const LoadedPack& PackLoader::load(const std::string& spec, const std::string& base_dir, Registry& registry) {
  const std::string path = resolve(spec, base_dir);
  for (const LoadedPack& pack : loaded_)
    if (pack.path == path) return pack;

  // RTLD_LOCAL keeps packs from resolving each other's symbols; RTLD_NOW reports a
  // missing symbol here rather than in the middle of a run.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    throw std::runtime_error("cannot load plugin pack " + path + ": " + (why ? why : "unknown dlopen error"));
  }
  using EntryFn = const PackEntry* (*)();
  auto entry_fn = reinterpret_cast<EntryFn>(dlsym(handle, FLOWRUN_PACK_ENTRY_SYMBOL));
  if (!entry_fn) {
    dlclose(handle);
    throw std::runtime_error("plugin pack " + path + " has no entry symbol '" FLOWRUN_PACK_ENTRY_SYMBOL
                             "': is it a flowrun pack? (define one with FLOWRUN_PLUGIN_PACK)");
  }
  const PackEntry* entry = entry_fn();
  if (!entry || entry->abi_version != kPackAbiVersion) {
    const int theirs = entry ? entry->abi_version : -1;
    dlclose(handle);
    throw std::runtime_error("plugin pack " + path + " was built for flowrun plugin ABI " + std::to_string(theirs) +
                             ", this flowrun has ABI " + std::to_string(kPackAbiVersion) +
                             ": rebuild the pack against this flowrun's headers");
  }
  if (entry->cxx11_string_abi != FLOWRUN_CXX11_ABI) {
    dlclose(handle);
    throw std::runtime_error("plugin pack " + path + " was built with _GLIBCXX_USE_CXX11_ABI=" +
                             std::to_string(entry->cxx11_string_abi) + ", flowrun with " +
                             std::to_string(FLOWRUN_CXX11_ABI) + ": rebuild the pack with the same setting");
  }
  // Register into a scratch registry first, so a clash leaves the real one untouched.
  Registry scratch;
  try {
    entry->register_plugins(scratch);
  } catch (const std::exception& e) {
    throw std::runtime_error("plugin pack " + path + " failed to register its plugins: " + e.what());
  }
  LoadedPack pack{entry->name ? entry->name : "?", entry->version ? entry->version : "?", path, scratch.names()};
  for (const std::string& name : pack.plugins) {
    if (const PluginInfo* existing = registry.find(name)) {
      throw std::runtime_error("plugin pack " + path + " registers '" + name + "', a name already taken by " +
                               existing->origin);
    }
  }
  for (const std::string& name : pack.plugins) {
    PluginInfo info = *scratch.find(name);
    info.origin = path;
    registry.add(std::move(info));
  }
  // The handle stays open: the registered factories and stages live in it.
  loaded_.push_back(std::move(pack));
  return loaded_.back();
}

void PackLoader::load_search_path(Registry& registry) {
  for (const std::string& dir : search_path()) {
    std::error_code ec;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".so") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) load(file, "", registry);
  }
}

}  // namespace flowrun
