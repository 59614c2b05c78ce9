// Repeated keys in a JSON object. JSON parsers keep only the last of them, so a
// description that says "lr" twice would silently run with the second: descriptions and
// ablation files refuse them instead. Feed every event of nlohmann's parse to check().
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowrun {

class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(std::string source) : source_(std::move(source)) {}

  // `key` is the key's text for parse_event_t::key, else ignored. Throws
  // DescriptionError(source, pointer of the object, "the key ... appears twice ...").
  void check(nlohmann::json::parse_event_t event, const std::string& key);

  // A callback for Json::parse (json or ordered_json) that runs the check.
  template <class Json>
  static typename Json::parser_callback_t callback(std::string source) {
    auto check = std::make_shared<DuplicateKeyCheck>(std::move(source));
    return [check](int, typename Json::parse_event_t event, Json& parsed) {
      check->check(event, event == Json::parse_event_t::key ? parsed.template get_ref<const std::string&>() : kNoKey);
      return true;
    };
  }

 private:
  struct Frame {
    bool object = false;
    std::vector<std::string> keys;  // seen in this object (few: a linear search)
    std::size_t index = 0;          // arrays: the element being parsed
  };
  std::string pointer() const;  // of the innermost container
  void element_done();

  static inline const std::string kNoKey;
  std::string source_;
  std::vector<Frame> frames_;
};

}  // namespace flowrun
