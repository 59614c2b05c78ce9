#include "lib/model/hub.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "flowrun/logging.hpp"
#include "lib/io/download.hpp"

namespace flowrun {
namespace fs = std::filesystem;
namespace {

constexpr const char* kWeightsFile = "model.safetensors";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool offline() {
  const std::string a = env("FLOWRUN_OFFLINE"), b = env("HF_HUB_OFFLINE");
  return (!a.empty() && a != "0") || (!b.empty() && b != "0");
}

// The SHA-256 the hub publishes for a Git LFS file, from its model API; "" when the
// API does not answer or lists none (the download then goes unchecked, and says so).
std::string published_sha256(const std::string& id, const std::string& cache_folder) {
  const std::string api = hub_endpoint() + "/api/models/" + id + "?blobs=true";
  const std::string info_path = (fs::path(cache_folder) / "api.json").string();
  try {
    download_file(api, info_path);
    std::ifstream in(info_path);
    const auto info = nlohmann::json::parse(in);
    for (const auto& sibling : info.value("siblings", nlohmann::json::array()))
      if (sibling.value("rfilename", "") == kWeightsFile && sibling.contains("lfs"))
        return sibling["lfs"].value("sha256", "");
  } catch (const std::exception& e) {
    log::warn("hub: no checksum for ", id, " (", e.what(), ")");
  }
  return "";
}

}  // namespace

bool looks_like_hub_id(const std::string& spec) {
  static const std::regex id(R"(^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$)");
  return std::regex_match(spec, id) && spec.find("..") == std::string::npos &&
         fs::path(spec).extension() != ".safetensors";
}

std::string hub_cache_dir() {
  if (!env("FLOWRUN_CACHE").empty()) return env("FLOWRUN_CACHE");
  if (!env("XDG_CACHE_HOME").empty()) return (fs::path(env("XDG_CACHE_HOME")) / "flowrun").string();
  return (fs::path(env("HOME").empty() ? "." : env("HOME")) / ".cache" / "flowrun").string();
}

std::string hub_endpoint() {
  std::string e = !env("FLOWRUN_HUB_ENDPOINT").empty() ? env("FLOWRUN_HUB_ENDPOINT")
                  : !env("HF_ENDPOINT").empty()        ? env("HF_ENDPOINT")
                                                       : "https://huggingface.co";
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::string resolve_pretrained(const std::string& spec, const std::string& expected_sha256) {
  if (fs::is_regular_file(spec)) return spec;
  if (fs::is_directory(spec)) {
    const fs::path file = fs::path(spec) / kWeightsFile;
    if (fs::is_regular_file(file)) return file.string();
    throw std::runtime_error("pretrained folder " + spec + " has no " + kWeightsFile);
  }
  if (!looks_like_hub_id(spec)) {
    throw std::runtime_error("pretrained '" + spec + "' is neither a file, a folder with " + kWeightsFile +
                             ", nor a hub id like google/vit-base-patch16-224-in21k");
  }
  std::string folder_name = spec;
  folder_name.replace(folder_name.find('/'), 1, "--");
  const fs::path folder = fs::path(hub_cache_dir()) / "hub" / folder_name;
  const fs::path file = folder / kWeightsFile;
  if (fs::is_regular_file(file)) return file.string();
  const std::string url = hub_endpoint() + "/" + spec + "/resolve/main/" + kWeightsFile;
  const std::string put_it = "put " + url + " at " + file.string() + " (or set FLOWRUN_CACHE)";
  if (offline()) throw std::runtime_error("pretrained " + spec + ": offline and no cached copy; " + put_it);
  fs::create_directories(folder);
  DownloadOptions options;
  options.resume = true;
  options.expected_sha256 = !expected_sha256.empty() ? expected_sha256 : published_sha256(spec, folder.string());
  log::info("hub: downloading ", spec, " from ", url, options.expected_sha256.empty() ? " (no published checksum)" : "");
  try {
    download_file(url, file.string(), options);
  } catch (const std::exception& e) {
    throw std::runtime_error("pretrained " + spec + ": download failed (" + std::string(e.what()) + "); " + put_it);
  }
  return file.string();
}

}  // namespace flowrun
