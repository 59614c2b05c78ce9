// MD5 (RFC 1321), only to check downloads against published checksums (CIFAR-10
// publishes an MD5). Not for anything security-related.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "stages/io/block_buffer.hpp"

namespace flowrun {

class Md5 {
 public:
  Md5();
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes; lower-case hex

 private:
  void block(const std::uint8_t* p);
  std::uint32_t state_[4];
  BlockBuffer blocks_;
};

std::string md5_of_file(const std::string& path);  // throws std::runtime_error if unreadable

}  // namespace flowrun
