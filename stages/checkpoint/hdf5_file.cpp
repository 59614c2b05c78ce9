#include "stages/checkpoint/hdf5_file.hpp"

#include <hdf5.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace flowrun {
namespace {

// HDF5 prints its own error stack to stderr by default; flowrun reports errors itself.
//
// A write that fails for want of space (a full disk) leaves objects HDF5 cannot close:
// closing one flushes it, which fails again, so they stay open, and a second H5Fclose
// of that file crashes. HDF5's clean-up at exit walks them too and crashes (1.10.8:
// SIGSEGV in H5D_close). So a file whose close failed is never touched again (its
// objects leak), and the library is told not to clean up at exit: every file flowrun
// finishes is closed explicitly before, and the kernel closes the descriptors of
// abandoned ones. H5dont_atexit must come before any other HDF5 call, hence here.
void prepare_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

// Closes an HDF5 handle of any kind (file object, dataspace, type, property list,
// attribute) when it goes out of scope.
class Resource {
 public:
  explicit Resource(hid_t id) : id_(id) {}
  ~Resource() {
    if (id_ >= 0) H5Idec_ref(id_);
  }
  Resource(const Resource&) = delete;
  Resource& operator=(const Resource&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
};

hid_t native_type(Hdf5Type type) {
  switch (type) {
    case Hdf5Type::F32: return H5T_NATIVE_FLOAT;
    case Hdf5Type::F64: return H5T_NATIVE_DOUBLE;
    case Hdf5Type::I64: return H5T_NATIVE_INT64;
    case Hdf5Type::U8: return H5T_NATIVE_UINT8;
  }
  return H5T_NATIVE_FLOAT;
}

std::string object_path(const std::string& name) { return name.empty() ? std::string("/") : name; }

}  // namespace

std::size_t hdf5_type_size(Hdf5Type type) {
  switch (type) {
    case Hdf5Type::F32: return 4;
    case Hdf5Type::F64: return 8;
    case Hdf5Type::I64: return 8;
    case Hdf5Type::U8: return 1;
  }
  return 0;
}

const char* hdf5_type_name(Hdf5Type type) {
  switch (type) {
    case Hdf5Type::F32: return "float32";
    case Hdf5Type::F64: return "float64";
    case Hdf5Type::I64: return "int64";
    case Hdf5Type::U8: return "uint8";
  }
  return "?";
}

std::size_t Hdf5DatasetInfo::elements() const {
  std::size_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::size_t>(d);
  return n;
}

Hdf5File Hdf5File::create(const std::string& path) {
  prepare_hdf5();
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (id < 0) throw std::runtime_error("cannot create the HDF5 file " + path);
  return Hdf5File(path, id);
}

Hdf5File Hdf5File::open_read(const std::string& path) {
  prepare_hdf5();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw std::runtime_error(path + " is not a readable HDF5 file (missing, truncated or another format)");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw std::runtime_error("cannot open the HDF5 file " + path);
  return Hdf5File(path, id);
}

Hdf5File::~Hdf5File() {
  if (id_ >= 0) H5Fclose(id_);  // once, whatever it returns (see prepare_hdf5)
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept : path_(std::move(other.path_)), id_(std::exchange(other.id_, -1)) {}

Hdf5File& Hdf5File::operator=(Hdf5File&& other) noexcept {
  if (this != &other) {
    if (id_ >= 0) H5Fclose(id_);
    path_ = std::move(other.path_);
    id_ = std::exchange(other.id_, -1);
  }
  return *this;
}

void Hdf5File::close() {
  if (id_ < 0) return;
  const herr_t flushed = H5Fflush(id_, H5F_SCOPE_GLOBAL);
  const herr_t closed = H5Fclose(id_);
  id_ = -1;
  if (flushed < 0 || closed < 0)
    throw std::runtime_error("could not finish writing the HDF5 file " + path_ + " (is the disk full?)");
}

void Hdf5File::fail(const std::string& what) const { throw std::runtime_error(path_ + ": " + what); }

void Hdf5File::write(const std::string& name, Hdf5Type type, const std::vector<std::int64_t>& shape, const void* data) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Resource space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  Resource links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  Resource set(H5Dcreate2(id_, name.c_str(), native_type(type), space.get(), links.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!set.ok()) fail("cannot create dataset '" + name + "' (does it exist already?)");
  if (H5Dwrite(set.get(), native_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail("cannot write dataset '" + name + "'");
}

void Hdf5File::create_group(const std::string& name) {
  Resource links(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(links.get(), 1);
  Resource group(H5Gcreate2(id_, name.c_str(), links.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!group.ok()) fail("cannot create group '" + name + "'");
}

bool Hdf5File::exists(const std::string& name) const {
  if (name.empty() || name == "/") return true;
  // Every link on the way must exist before the next one is asked about.
  std::size_t from = 0;
  while (true) {
    const std::size_t slash = name.find('/', from);
    const std::string prefix = name.substr(0, slash);
    if (H5Lexists(id_, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) return true;
    from = slash + 1;
  }
}

Hdf5DatasetInfo Hdf5File::info(const std::string& name) const {
  Resource set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail("no dataset '" + name + "'");
  Resource space(H5Dget_space(set.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  Hdf5DatasetInfo out;
  out.shape.assign(dims.begin(), dims.end());
  Resource type(H5Dget_type(set.get()));
  const H5T_class_t cls = H5Tget_class(type.get());
  const std::size_t size = H5Tget_size(type.get());
  if (cls == H5T_FLOAT) out.type = size == 8 ? Hdf5Type::F64 : Hdf5Type::F32;
  else if (cls == H5T_INTEGER) out.type = size == 1 ? Hdf5Type::U8 : Hdf5Type::I64;
  else fail("dataset '" + name + "' is neither float nor integer");
  return out;
}

void Hdf5File::read(const std::string& name, Hdf5Type type, void* out) const {
  Resource set(H5Dopen2(id_, name.c_str(), H5P_DEFAULT));
  if (!set.ok()) fail("no dataset '" + name + "'");
  if (H5Dread(set.get(), native_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    fail("cannot read dataset '" + name + "' as " + hdf5_type_name(type));
}

std::vector<double> Hdf5File::read_f64(const std::string& name) const {
  std::vector<double> out(info(name).elements());
  read(name, Hdf5Type::F64, out.data());
  return out;
}

std::vector<std::int64_t> Hdf5File::read_i64(const std::string& name) const {
  std::vector<std::int64_t> out(info(name).elements());
  read(name, Hdf5Type::I64, out.data());
  return out;
}

std::vector<std::string> Hdf5File::datasets(const std::string& group) const {
  std::vector<std::string> names;
  if (!exists(group)) return names;
  Resource g(H5Gopen2(id_, object_path(group).c_str(), H5P_DEFAULT));
  if (!g.ok()) fail("no group '" + group + "'");
  auto visit = [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
    if (info->type == H5O_TYPE_DATASET) static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  if (H5Ovisit2(g.get(), H5_INDEX_NAME, H5_ITER_INC, visit, &names, H5O_INFO_BASIC) < 0)
    fail("cannot list group '" + group + "'");
  std::sort(names.begin(), names.end());
  return names;
}

void Hdf5File::set_attribute(const std::string& object, const std::string& name, const std::string& value) {
  // Variable-length UTF-8, which h5py reads as str (fixed-length strings come back as bytes).
  Resource type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Resource space(H5Screate(H5S_SCALAR));
  Resource attr(H5Acreate_by_name(id_, object_path(object).c_str(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok()) fail("cannot create attribute '" + name + "' on '" + object_path(object) + "'");
  const char* text = value.c_str();
  if (H5Awrite(attr.get(), type.get(), &text) < 0) fail("cannot write attribute '" + name + "'");
}

void Hdf5File::set_attribute(const std::string& object, const std::string& name, std::int64_t value) {
  Resource space(H5Screate(H5S_SCALAR));
  Resource attr(H5Acreate_by_name(id_, object_path(object).c_str(), name.c_str(), H5T_NATIVE_INT64, space.get(),
                                  H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0) fail("cannot write attribute '" + name + "'");
}

void Hdf5File::set_attribute(const std::string& object, const std::string& name, double value) {
  Resource space(H5Screate(H5S_SCALAR));
  Resource attr(H5Acreate_by_name(id_, object_path(object).c_str(), name.c_str(), H5T_NATIVE_DOUBLE, space.get(),
                                  H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok() || H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0) fail("cannot write attribute '" + name + "'");
}

bool Hdf5File::has_attribute(const std::string& object, const std::string& name) const {
  return H5Aexists_by_name(id_, object_path(object).c_str(), name.c_str(), H5P_DEFAULT) > 0;
}

std::string Hdf5File::string_attribute(const std::string& object, const std::string& name) const {
  Resource attr(H5Aopen_by_name(id_, object_path(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr.ok()) fail("no attribute '" + name + "' on '" + object_path(object) + "'");
  Resource type(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) fail("attribute '" + name + "' is not a string");
  if (H5Tis_variable_str(type.get()) > 0) {  // written by h5py, for instance
    char* text = nullptr;
    Resource memtype(H5Tget_native_type(type.get(), H5T_DIR_ASCEND));
    if (H5Aread(attr.get(), memtype.get(), &text) < 0 || !text) fail("cannot read attribute '" + name + "'");
    std::string out(text);
    H5free_memory(text);
    return out;
  }
  std::string out(H5Tget_size(type.get()), '\0');
  if (H5Aread(attr.get(), type.get(), out.data()) < 0) fail("cannot read attribute '" + name + "'");
  out.resize(out.find('\0') == std::string::npos ? out.size() : out.find('\0'));
  return out;
}

std::int64_t Hdf5File::int_attribute(const std::string& object, const std::string& name) const {
  Resource attr(H5Aopen_by_name(id_, object_path(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  std::int64_t value = 0;
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    fail("no integer attribute '" + name + "' on '" + object_path(object) + "'");
  return value;
}

double Hdf5File::double_attribute(const std::string& object, const std::string& name) const {
  Resource attr(H5Aopen_by_name(id_, object_path(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  double value = 0;
  if (!attr.ok() || H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &value) < 0)
    fail("no number attribute '" + name + "' on '" + object_path(object) + "'");
  return value;
}

}  // namespace flowrun
