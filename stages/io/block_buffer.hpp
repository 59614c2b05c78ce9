// The Merkle-Damgard framing MD5 and SHA-256 share: cut the input into 64-byte
// blocks, and at the end append 0x80, zeros and the message length in bits (MD5
// little-endian, SHA-256 big-endian). The hash supplies only its block function.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace flowrun {

class BlockBuffer {
 public:
  template <typename OnBlock>
  void feed(const void* data, std::size_t size, OnBlock&& on_block) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    length_ += size;
    while (size > 0) {
      const std::size_t take = std::min(size, sizeof buffer_ - buffered_);
      std::memcpy(buffer_ + buffered_, p, take);
      buffered_ += take, p += take, size -= take;
      if (buffered_ == sizeof buffer_) {
        on_block(buffer_);
        buffered_ = 0;
      }
    }
  }

  template <typename OnBlock>
  void finish(bool big_endian_length, OnBlock&& on_block) {
    const std::uint64_t bits = length_ * 8;
    const std::uint8_t pad = 0x80, zero = 0;
    feed(&pad, 1, on_block);
    while (buffered_ != 56) feed(&zero, 1, on_block);
    std::uint8_t length_bytes[8];
    for (int i = 0; i < 8; ++i)
      length_bytes[i] = static_cast<std::uint8_t>(bits >> (big_endian_length ? 56 - 8 * i : 8 * i));
    feed(length_bytes, 8, on_block);
  }

 private:
  std::uint8_t buffer_[64];
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
};

}  // namespace flowrun
