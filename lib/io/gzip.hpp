// Reading a whole .gz file into memory (zlib), e.g. cifar-10-binary.tar.gz.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowrun {

// Throws std::runtime_error naming the file when it is missing or not valid gzip.
std::vector<std::uint8_t> gunzip_file(const std::string& path);

}  // namespace flowrun
