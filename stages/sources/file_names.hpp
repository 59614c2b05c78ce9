// Which files the file-reading sources take: by ending, case-insensitively.
#pragma once

#include <algorithm>
#include <cctype>
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

}  // namespace flowrun
