// SHA-256 (FIPS 180-4), to check downloads against published checksums (Hugging Face
// publishes SHA-256 for weight files).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "stages/io/block_buffer.hpp"

namespace flowrun {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes; lower-case hex

 private:
  void block(const std::uint8_t* p);
  std::uint32_t state_[8];
  BlockBuffer blocks_;
};

}  // namespace flowrun
