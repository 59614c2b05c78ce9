// What the file-reading sources share: which files they take (by ending,
// case-insensitively) and reading one whole into a buffer its samples can point into.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace flowrun {

inline const std::vector<std::string>& default_image_extensions() {
  static const std::vector<std::string> extensions = {".jpg", ".jpeg", ".png"};
  return extensions;
}

inline bool has_extension(const std::string& name, const std::vector<std::string>& extensions) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const std::string& ext : extensions)
    if (lower.size() >= ext.size() && lower.compare(lower.size() - ext.size(), ext.size(), ext) == 0) return true;
  return false;
}

// The bytes of the file at `path`; throws "cannot read PATH".
inline std::shared_ptr<std::vector<std::uint8_t>> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
  if (!in) throw std::runtime_error("cannot read " + path);
  return bytes;
}

}  // namespace flowrun
