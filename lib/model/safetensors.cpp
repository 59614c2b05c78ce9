#include "lib/model/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"

namespace flowrun {
namespace {

constexpr std::uint64_t kMaxHeader = 100u << 20;  // the reference implementation's limit

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {{DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2},
                                 {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
                                 {DType::I16, "I16", 2},  {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
                                 {DType::BOOL, "BOOL", 1}};

const DTypeInfo* by_name(const std::string& name) {
  for (const DTypeInfo& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::size_t element_count(const std::vector<std::int64_t>& shape) {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

}  // namespace

const char* dtype_name(DType dtype) {
  for (const DTypeInfo& d : kDTypes)
    if (d.dtype == dtype) return d.name;
  return "?";
}

std::size_t dtype_size(DType dtype) {
  for (const DTypeInfo& d : kDTypes)
    if (d.dtype == dtype) return d.size;
  return 0;
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile(path));
  file->parse();
  return file;
}

SafetensorsFile::SafetensorsFile(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path_ + ": " + std::strerror(errno));
  struct stat st {};
  fstat(fd, &st);
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* mapped = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapped == MAP_FAILED) {
      ::close(fd);
      throw std::runtime_error("cannot map " + path_ + ": " + std::strerror(errno));
    }
    base_ = static_cast<const std::uint8_t*>(mapped);
  }
  ::close(fd);
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) munmap(const_cast<std::uint8_t*>(base_), size_);
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  for (const TensorView& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

void SafetensorsFile::parse() {
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error(path_ + " is not a valid safetensors file: " + why);
  };
  if (size_ < 8) fail("shorter than the 8-byte header length");
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | base_[i];
  if (header_size > kMaxHeader) fail("header length " + std::to_string(header_size) + " is implausible");
  if (8 + header_size > size_) fail("header length " + std::to_string(header_size) + " runs past the end of the file");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base_ + 8, base_ + 8 + header_size);
  } catch (const nlohmann::json::parse_error& e) {
    fail(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail("header is not a JSON object");
  const std::uint8_t* buffer = base_ + 8 + header_size;
  const std::size_t buffer_size = size_ - 8 - header_size;
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object()) fail("__metadata__ is not an object");
      for (const auto& m : item.value().items()) {
        if (!m.value().is_string()) fail("__metadata__ value '" + m.key() + "' is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const auto& entry = item.value();
    const std::string where = "tensor '" + item.key() + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      fail(where + " needs dtype, shape and data_offsets");
    const DTypeInfo* dtype = entry["dtype"].is_string() ? by_name(entry["dtype"].get<std::string>()) : nullptr;
    if (!dtype) fail(where + " has unsupported dtype " + entry["dtype"].dump());
    TensorView view;
    view.name = item.key();
    view.dtype = dtype->dtype;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_integer() || d.get<std::int64_t>() < 0) fail(where + " has a bad shape " + entry["shape"].dump());
      view.shape.push_back(d.get<std::int64_t>());
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      fail(where + " has bad data_offsets " + offsets.dump());
    const auto begin = offsets[0].get<std::size_t>(), end = offsets[1].get<std::size_t>();
    if (begin > end || end > buffer_size) fail(where + " data_offsets " + offsets.dump() + " are outside the data");
    if (end - begin != element_count(view.shape) * dtype->size) {
      fail(where + " has " + std::to_string(end - begin) + " bytes, its dtype and shape need " +
           std::to_string(element_count(view.shape) * dtype->size));
    }
    view.data = buffer + begin;
    view.bytes = end - begin;
    ranges.emplace_back(begin, end);
    tensors_.push_back(std::move(view));
  }
  // The data must be covered exactly: no overlaps, no holes.
  std::sort(ranges.begin(), ranges.end());
  std::size_t expected = 0;
  for (const auto& [begin, end] : ranges) {
    if (begin != expected) fail(begin < expected ? "tensors overlap" : "the data has a hole at byte " + std::to_string(expected));
    expected = end;
  }
  if (expected != buffer_size) fail("the data has " + std::to_string(buffer_size - expected) + " unindexed bytes at the end");
  std::sort(tensors_.begin(), tensors_.end(),
            [](const TensorView& a, const TensorView& b) { return a.data < b.data; });
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::size_t offset = 0;
  for (const TensorToWrite& t : tensors) {
    const std::size_t bytes = element_count(t.shape) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the reference writer does
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[static_cast<std::size_t>(i)] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  AtomicFile file(path);
  file.write(length);
  file.write(text);
  for (const TensorToWrite& t : tensors) {
    const std::size_t bytes = element_count(t.shape) * dtype_size(t.dtype);
    file.write(std::string(static_cast<const char*>(t.data), bytes));
  }
  file.commit();
}

}  // namespace flowrun
