#include "lib/io/gzip.hpp"

#include <zlib.h>

#include <stdexcept>

namespace flowrun {

std::vector<std::uint8_t> gunzip_file(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  if (!in) throw std::runtime_error("cannot open " + path);
  gzbuffer(in, 1 << 20);
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> chunk(1 << 20);
  while (true) {
    const int n = gzread(in, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const std::string why = gzerror(in, &code);
      gzclose(in);
      throw std::runtime_error(path + " is not a valid gzip file: " + why);
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  gzclose(in);
  return out;
}

}  // namespace flowrun
