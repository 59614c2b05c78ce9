#include "flowrun/json_keys.hpp"

#include <algorithm>

#include "flowrun/errors.hpp"

namespace flowrun {

void DuplicateKeyCheck::check(nlohmann::json::parse_event_t event, const std::string& key) {
  using E = nlohmann::json::parse_event_t;
  switch (event) {
    case E::object_start:
    case E::array_start:
      frames_.push_back(Frame{event == E::object_start, {}, 0});
      break;
    case E::key: {
      Frame& f = frames_.back();
      if (std::find(f.keys.begin(), f.keys.end(), key) != f.keys.end())
        throw DescriptionError(source_, pointer(),
                               "the key \"" + key + "\" appears twice in this object (JSON would keep only the last " +
                                   "silently): keep one");
      f.keys.push_back(key);
      break;
    }
    case E::object_end:
    case E::array_end:
      frames_.pop_back();
      element_done();
      break;
    case E::value:
      element_done();
      break;
  }
}

// A value (scalar or container) finished: an array moves on to its next element.
void DuplicateKeyCheck::element_done() {
  if (!frames_.empty() && !frames_.back().object) ++frames_.back().index;
}

// Each container's place in its parent: the parent's last key, or its element index.
std::string DuplicateKeyCheck::pointer() const {
  nlohmann::json::json_pointer out;
  for (std::size_t i = 0; i + 1 < frames_.size(); ++i) {
    const Frame& parent = frames_[i];
    if (parent.object) out /= parent.keys.back();
    else out /= parent.index;
  }
  return out.to_string();
}

}  // namespace flowrun
