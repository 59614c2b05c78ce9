// Payload kind "number": one integer, as produced by counter_source.
#pragma once

#include <cstdint>
#include <string>

#include "flowrun/message.hpp"

namespace flowrun {

constexpr const char* kNumberKind = "number";

struct NumberPayload : Payload {
  explicit NumberPayload(std::int64_t v) : value(v) {}
  std::string describe() const override { return "number " + std::to_string(value); }
  std::int64_t value;
};

}  // namespace flowrun
