// Reading description files and applying --set overrides: the JSON-level half of
// description handling (validation against plugins is in description_validate.cpp).
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "flowrun/description.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/json_keys.hpp"

namespace flowrun {
using json = nlohmann::json;

namespace {

// nlohmann reports a byte offset; people want a line and a column.
std::string line_and_column(const std::string& text, std::size_t byte) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  // nlohmann points one past the offending character.
  if (column > 1) --column;
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

std::string strip_nlohmann_prefix(const std::string& what) {
  // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error while parsing ..."
  // "[json.exception.out_of_range.406] number overflow parsing '1e999'"
  const std::size_t bracket = what.rfind("] ", what.find(' ') == std::string::npos ? 0 : what.find(' '));
  const std::string text = what.compare(0, 1, "[") == 0 && bracket != std::string::npos ? what.substr(bracket + 2) : what;
  const std::size_t colon = text.find(": ");
  std::string rest = colon == std::string::npos ? text : text.substr(colon + 2);
  const std::string noise = "syntax error while parsing ";
  if (rest.compare(0, noise.size(), noise) == 0) rest = rest.substr(noise.size());
  return rest;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool is_index(const std::string& s) {
  return !s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

std::string escape_pointer_token(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

}  // namespace

json parse_description_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text, DuplicateKeyCheck::callback<json>(source), /*allow_exceptions=*/true,
                       /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw DescriptionError(source, "", "malformed JSON at " + line_and_column(text, e.byte) + ": " +
                                           strip_nlohmann_prefix(e.what()));
  } catch (const json::exception& e) {  // a number past double's range ("1e999") has no position
    throw DescriptionError(source, "", "malformed JSON: " + strip_nlohmann_prefix(e.what()));
  }
}

json read_description_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DescriptionError(path, "", "cannot open the description file (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_description_json(text.str(), path);
}

void apply_overrides(json& document, const std::vector<std::string>& overrides) {
  for (const std::string& override_text : overrides) {
    const std::string source = "--set " + override_text;
    const std::size_t eq = override_text.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw DescriptionError(source, "", "expected PATH=VALUE, e.g. nodes.augment.plugin=randaugment or seed=3");
    }
    const std::vector<std::string> path = split_path(override_text.substr(0, eq));
    const std::string value_text = override_text.substr(eq + 1);
    json value;
    try {
      value = json::parse(value_text, DuplicateKeyCheck::callback<json>(source));
    } catch (const json::parse_error&) {
      value = value_text;  // a bare word: take it as a string
    } catch (const json::exception& e) {
      throw DescriptionError(source, "", "VALUE '" + value_text + "': " + strip_nlohmann_prefix(e.what()));
    }

    json* at = &document;
    std::string pointer;
    for (std::size_t i = 0; i < path.size(); ++i) {
      const std::string& part = path[i];
      const bool last = i + 1 == path.size();
      if (part.empty()) throw DescriptionError(source, pointer, "empty path segment in '" + override_text.substr(0, eq) + "'");
      if (at->is_array()) {
        std::size_t index = at->size();
        if (is_index(part)) {
          index = static_cast<std::size_t>(std::stoul(part));
        } else {
          std::vector<std::string> ids;
          for (std::size_t k = 0; k < at->size(); ++k) {
            const json& element = (*at)[k];
            if (element.is_object() && element.contains("id") && element["id"].is_string()) {
              ids.push_back(element["id"].get<std::string>());
              if (ids.back() == part) index = k;
            }
          }
          if (index == at->size()) {
            throw DescriptionError(source, pointer,
                                   "no element with id '" + part + "'" + did_you_mean(part, ids));
          }
        }
        if (index >= at->size()) {
          throw DescriptionError(source, pointer,
                                 "index " + part + " is past the end (" + std::to_string(at->size()) + " elements)");
        }
        pointer += "/" + std::to_string(index);
        at = &(*at)[index];
      } else if (at->is_object() || at->is_null()) {
        if (at->is_null()) *at = json::object();
        if (!at->contains(part) && !last && i + 1 < path.size()) {
          // Creating intermediate objects is fine below "params" (a node that had none).
          if (part != "params") {
            std::vector<std::string> keys;
            for (const auto& item : at->items()) keys.push_back(item.key());
            throw DescriptionError(source, pointer, "no key '" + part + "'" + did_you_mean(part, keys));
          }
        }
        pointer += "/" + escape_pointer_token(part);
        at = &(*at)[part];
      } else {
        throw DescriptionError(source, pointer, "cannot descend into a " + std::string(at->type_name()) +
                                                    " with '" + part + "'");
      }
    }
    *at = value;
  }
}

}  // namespace flowrun
