#include "stages/sources/tar_archive.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace flowrun {
namespace {

constexpr std::size_t kBlock = 512;

// Header field offsets (POSIX ustar).
constexpr std::size_t kNameOffset = 0, kNameLength = 100;
constexpr std::size_t kSizeOffset = 124, kSizeLength = 12;
constexpr std::size_t kChecksumOffset = 148, kChecksumLength = 8;
constexpr std::size_t kTypeOffset = 156;
constexpr std::size_t kMagicOffset = 257;
constexpr std::size_t kPrefixOffset = 345, kPrefixLength = 155;

std::string field(const std::uint8_t* header, std::size_t offset, std::size_t length) {
  const char* begin = reinterpret_cast<const char*>(header + offset);
  return std::string(begin, strnlen(begin, length));
}

// Octal, or base-256 (GNU) when the first byte has its high bit set.
std::uint64_t parse_number(const std::uint8_t* p, std::size_t length) {
  std::uint64_t value = 0;
  if (p[0] & 0x80) {
    for (std::size_t i = 1; i < length; ++i) value = (value << 8) | p[i];
    return value;
  }
  std::size_t i = 0;
  while (i < length && (p[i] == ' ' || p[i] == 0)) ++i;
  for (; i < length && p[i] >= '0' && p[i] <= '7'; ++i) value = value * 8 + (p[i] - '0');
  return value;
}

bool all_zero(const std::uint8_t* p) {
  for (std::size_t i = 0; i < kBlock; ++i)
    if (p[i]) return false;
  return true;
}

bool checksum_ok(const std::uint8_t* header) {
  // The sum of all bytes with the checksum field counted as spaces. Summed plainly and
  // corrected after, so that the compiler vectorizes it: this was most of indexing time.
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) sum += header[i];
  for (std::size_t i = kChecksumOffset; i < kChecksumOffset + kChecksumLength; ++i) sum -= header[i];
  sum += ' ' * kChecksumLength;
  return sum == parse_number(header + kChecksumOffset, kChecksumLength);
}

// pax extended header records: "LEN key=value\n"...
void parse_pax(const std::uint8_t* p, std::size_t size, std::string& path, std::uint64_t& file_size,
               bool& has_size) {
  std::size_t pos = 0;
  while (pos < size) {
    std::size_t len = 0, i = pos;
    while (i < size && p[i] >= '0' && p[i] <= '9') len = len * 10 + (p[i++] - '0');
    if (len == 0 || pos + len > size) return;
    const std::string record(reinterpret_cast<const char*>(p + i + 1), len - (i + 1 - pos) - 1);
    const std::size_t eq = record.find('=');
    if (eq != std::string::npos) {
      const std::string key = record.substr(0, eq), value = record.substr(eq + 1);
      if (key == "path") path = value;
      if (key == "size") {
        file_size = std::stoull(value);
        has_size = true;
      }
    }
    pos += len;
  }
}

}  // namespace

std::shared_ptr<const TarArchive> TarArchive::open(const std::string& path) {
  std::shared_ptr<TarArchive> archive(new TarArchive(path));
  archive->index();
  return archive;
}

std::shared_ptr<const TarArchive> TarArchive::from_bytes(std::vector<std::uint8_t> bytes, const std::string& name) {
  std::shared_ptr<TarArchive> archive(new TarArchive(std::move(bytes), name));
  archive->index();
  return archive;
}

TarArchive::TarArchive(std::vector<std::uint8_t> bytes, std::string name)
    : path_(std::move(name)), owned_(std::move(bytes)) {
  base_ = owned_.data();
  size_ = owned_.size();
}

TarArchive::TarArchive(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open tar file " + path_ + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot stat tar file " + path_ + ": " + std::strerror(errno));
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* mapped = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error("cannot map tar file " + path_ + ": " + std::strerror(errno));
    }
    base_ = static_cast<const std::uint8_t*>(mapped);
    mapped_ = true;
  }
  ::close(fd);  // the mapping stays valid
}

TarArchive::~TarArchive() {
  if (mapped_) munmap(const_cast<std::uint8_t*>(base_), size_);
}

void TarArchive::index() {
  std::string long_name;  // from a GNU 'L' or pax 'x' header, for the next member
  std::uint64_t pax_size = 0;
  bool has_pax_size = false;
  std::size_t offset = 0;
  bool ended = false;
  while (offset + kBlock <= size_) {
    const std::uint8_t* header = base_ + offset;
    if (all_zero(header)) {  // end-of-archive marker
      ended = true;
      break;
    }
    if (!checksum_ok(header)) {
      throw std::runtime_error("tar file " + path_ + " has a corrupt header at byte " + std::to_string(offset) +
                               " (checksum mismatch): is it a tar file, and complete?");
    }
    const char type = static_cast<char>(header[kTypeOffset]);
    std::uint64_t size = parse_number(header + kSizeOffset, kSizeLength);
    if (has_pax_size && (type == '0' || type == '\0' || type == '7')) size = pax_size;
    const std::size_t data_offset = offset + kBlock;
    if (data_offset + size > size_) {
      throw std::runtime_error("tar file " + path_ + " is truncated: member at byte " + std::to_string(offset) +
                               " needs " + std::to_string(size) + " bytes, the file ends first");
    }
    const std::uint8_t* data = base_ + data_offset;
    if (type == 'L') {
      long_name.assign(reinterpret_cast<const char*>(data), strnlen(reinterpret_cast<const char*>(data), size));
    } else if (type == 'x') {
      parse_pax(data, size, long_name, pax_size, has_pax_size);
    } else if (type == '0' || type == '\0' || type == '7') {
      std::string name;
      if (!long_name.empty()) {
        name = std::move(long_name);
      } else {
        name = field(header, kNameOffset, kNameLength);
        const bool ustar = std::memcmp(header + kMagicOffset, "ustar", 5) == 0;
        if (ustar && header[kPrefixOffset] != 0) name = field(header, kPrefixOffset, kPrefixLength) + "/" + name;
      }
      members_.push_back({std::move(name), data_offset, size});
      long_name.clear();
      has_pax_size = false;
    } else {
      long_name.clear();  // directories, links, global headers: nothing to read
      has_pax_size = false;
    }
    offset = data_offset + (size + kBlock - 1) / kBlock * kBlock;
  }
  if (!ended) {
    throw std::runtime_error("tar file " + path_ + " is truncated: it ends at byte " + std::to_string(size_) +
                             " without the end-of-archive marker");
  }
}

}  // namespace flowrun
