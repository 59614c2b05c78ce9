// A small RAII layer over HDF5's C API: what checkpoints need and nothing more.
// Objects are addressed by slash paths ("model/blocks.0.attn.qkv.weight"); the
// groups on the way are created as needed. Torch-free, so tests and tools that only
// read checkpoints do not pay for LibTorch.
//
//   Hdf5File f = Hdf5File::create(path);
//   f.write("model/head.weight", Hdf5Type::F32, {10, 128}, data);
//   f.set_attribute("", "step", std::int64_t{120});   // "" = the file's root group
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowrun {

enum class Hdf5Type { F32, F64, I64, U8 };
std::size_t hdf5_type_size(Hdf5Type type);
const char* hdf5_type_name(Hdf5Type type);

struct Hdf5DatasetInfo {
  Hdf5Type type = Hdf5Type::F32;
  std::vector<std::int64_t> shape;
  std::size_t elements() const;
};

class Hdf5File {
 public:
  static Hdf5File create(const std::string& path);     // truncates
  static Hdf5File open_read(const std::string& path);  // throws naming the path when it is not HDF5
  ~Hdf5File();
  Hdf5File(Hdf5File&& other) noexcept;
  Hdf5File& operator=(Hdf5File&& other) noexcept;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;

  const std::string& path() const { return path_; }
  void close();  // flushes; errors throw (the destructor swallows them)

  void write(const std::string& name, Hdf5Type type, const std::vector<std::int64_t>& shape, const void* data);
  void create_group(const std::string& name);  // and the groups on the way
  bool exists(const std::string& name) const;  // dataset or group
  Hdf5DatasetInfo info(const std::string& name) const;
  // Reads the whole dataset converted to `type` into `out` (info(name).elements() values).
  void read(const std::string& name, Hdf5Type type, void* out) const;
  std::vector<double> read_f64(const std::string& name) const;
  std::vector<std::int64_t> read_i64(const std::string& name) const;
  // Datasets under a group, recursively, as paths relative to it, sorted.
  std::vector<std::string> datasets(const std::string& group) const;

  // Attributes on a group or dataset ("" = root).
  void set_attribute(const std::string& object, const std::string& name, const std::string& value);
  void set_attribute(const std::string& object, const std::string& name, std::int64_t value);
  void set_attribute(const std::string& object, const std::string& name, double value);
  bool has_attribute(const std::string& object, const std::string& name) const;
  std::string string_attribute(const std::string& object, const std::string& name) const;
  std::int64_t int_attribute(const std::string& object, const std::string& name) const;
  double double_attribute(const std::string& object, const std::string& name) const;

 private:
  Hdf5File(std::string path, std::int64_t id) : path_(std::move(path)), id_(id) {}
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::int64_t id_ = -1;  // hid_t
};

}  // namespace flowrun
