// One CSV field as RFC 4180 writes it: quoted when it holds a separator, a quote or a
// line break, quotes doubled. For the files flowrun writes (ablation tables, predictions).
#pragma once

#include <string>

namespace flowrun {

inline std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace flowrun
