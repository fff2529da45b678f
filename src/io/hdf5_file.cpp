#include "io/hdf5_file.h"

#include "core/error.h"

namespace causeway {

#define H5_CHECK(expr, object) h5_check(static_cast<int64_t>(expr), #expr, path_, object)

namespace {
// HDF5 prints its own error stack to stderr by default; causeway reports errors itself.
struct SilenceHdf5 {
  SilenceHdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};
const SilenceHdf5 silence_hdf5;

std::vector<hsize_t> dims_of(const std::vector<int64_t>& shape) {
  return std::vector<hsize_t>(shape.begin(), shape.end());
}
}  // namespace

void h5_check(int64_t status, const char* call, const std::filesystem::path& file,
              const std::string& object) {
  if (status < 0)
    throw Error(file.string() + ": " + object + ": HDF5 call failed: " + call);
}

H5Handle& H5Handle::operator=(H5Handle&& o) noexcept {
  if (this != &o) {
    H5Handle tmp(std::move(*this));
    id_ = o.id_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

H5Handle::~H5Handle() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE: H5Fclose(id_); break;
    case H5I_GROUP: H5Gclose(id_); break;
    case H5I_DATASET: H5Dclose(id_); break;
    case H5I_DATASPACE: H5Sclose(id_); break;
    case H5I_DATATYPE: H5Tclose(id_); break;
    case H5I_ATTR: H5Aclose(id_); break;
    case H5I_GENPROP_LST: H5Pclose(id_); break;
    default: break;
  }
}

H5File::H5File(const std::filesystem::path& path, H5Mode mode) : path_(path) {
  hid_t id = H5I_INVALID_HID;
  switch (mode) {
    case H5Mode::Create: id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT); break;
    case H5Mode::CreateExclusive:
      id = H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
      break;
    case H5Mode::ReadOnly: id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT); break;
    case H5Mode::ReadWrite: id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT); break;
  }
  if (id < 0) {
    const bool reading = mode == H5Mode::ReadOnly || mode == H5Mode::ReadWrite;
    throw InputError(path.string(), "",
                     reading ? "cannot open as an HDF5 file (missing, unreadable or not HDF5)"
                             : "cannot create the HDF5 file (does the folder exist and is it "
                               "writable?)");
  }
  file_ = H5Handle(id);
}

H5File::H5File(const std::filesystem::path& path, MPI_Comm comm) : path_(path) {
  H5Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5_CHECK(fapl.get(), "file access");
  H5_CHECK(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), "file access");
  const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  if (id < 0)
    throw InputError(path.string(), "", "cannot open the result file for parallel writing");
  file_ = H5Handle(id);
}

bool H5File::exists(const std::string& name) const {
  // Walk the path so a missing parent group is "no", not an error.
  std::string partial;
  size_t start = name.starts_with('/') ? 1 : 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    partial += "/" + name.substr(start, end - start);
    if (H5Lexists(file_.get(), partial.c_str(), H5P_DEFAULT) <= 0) return false;
    start = end + 1;
  }
  return true;
}

void H5File::ensure_group(const std::string& name) {
  std::string partial;
  size_t start = name.starts_with('/') ? 1 : 0;
  while (start < name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    partial += "/" + name.substr(start, end - start);
    if (H5Lexists(file_.get(), partial.c_str(), H5P_DEFAULT) <= 0) {
      H5Handle g(H5Gcreate2(file_.get(), partial.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      H5_CHECK(g.get(), partial);
    }
    start = end + 1;
  }
}

void H5File::write_numeric(const std::string& name, hid_t mem_type, const void* data,
                           const std::vector<int64_t>& shape) {
  if (auto slash = name.rfind('/'); slash != std::string::npos && slash > 0)
    ensure_group(name.substr(0, slash));
  auto dims = dims_of(shape);
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  H5_CHECK(space.get(), name);
  H5Handle dset(H5Dcreate2(file_.get(), name.c_str(), mem_type, space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5_CHECK(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), name);
}

void H5File::create_dataset(const std::string& name, H5Elem elem, const std::vector<int64_t>& shape,
                            const std::vector<int64_t>& chunk, double fill) {
  if (auto slash = name.rfind('/'); slash != std::string::npos && slash > 0)
    ensure_group(name.substr(0, slash));
  const hid_t type = elem == H5Elem::Float32 ? H5T_NATIVE_FLOAT : H5T_NATIVE_UINT8;
  auto dims = dims_of(shape);
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  H5_CHECK(space.get(), name);
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5_CHECK(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), name);
  H5_CHECK(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_ALLOC), name);
  const float f32 = static_cast<float>(fill);
  const uint8_t u8 = static_cast<uint8_t>(fill);
  H5_CHECK(H5Pset_fill_value(dcpl.get(), type, elem == H5Elem::Float32 ? static_cast<const void*>(&f32)
                                                                       : static_cast<const void*>(&u8)),
           name);
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  if (!chunk.empty() && elements > 0) {
    auto c = dims_of(chunk);
    H5_CHECK(H5Pset_chunk(dcpl.get(), static_cast<int>(c.size()), c.data()), name);
  }
  H5Handle dset(H5Dcreate2(file_.get(), name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(),
                           H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
}

void H5File::write_block_of(const std::string& name, hid_t mem_type,
                            const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                            const void* data) {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5Handle space(H5Dget_space(dset.get()));
  const auto start = dims_of(offset), n = dims_of(count);
  H5_CHECK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, n.data(), nullptr),
           name);
  H5Handle mem(H5Screate_simple(static_cast<int>(n.size()), n.data(), nullptr));
  H5_CHECK(H5Dwrite(dset.get(), mem_type, mem.get(), space.get(), H5P_DEFAULT, data), name);
}

void H5File::write_block(const std::string& name, const std::vector<int64_t>& offset,
                         const std::vector<int64_t>& count, const float* data) {
  write_block_of(name, H5T_NATIVE_FLOAT, offset, count, data);
}

void H5File::write_block(const std::string& name, const std::vector<int64_t>& offset,
                         const std::vector<int64_t>& count, const uint8_t* data) {
  write_block_of(name, H5T_NATIVE_UINT8, offset, count, data);
}

int64_t H5File::element_count(const std::string& name) const {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5Handle space(H5Dget_space(dset.get()));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  H5_CHECK(count, name);
  return count;
}

void H5File::read_into(const std::string& name, hid_t mem_type, void* out) const {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5_CHECK(H5Dread(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), name);
}

std::vector<uint8_t> H5File::read_bytes(const std::string& name) const {
  std::vector<uint8_t> out(static_cast<size_t>(element_count(name)));
  if (!out.empty()) read_into(name, H5T_NATIVE_UINT8, out.data());
  return out;
}

std::vector<int32_t> H5File::read_ints(const std::string& name) const {
  std::vector<int32_t> out(static_cast<size_t>(element_count(name)));
  if (!out.empty()) read_into(name, H5T_NATIVE_INT32, out.data());
  return out;
}

void H5File::write_floats(const std::string& name, const float* data,
                          const std::vector<int64_t>& shape) {
  write_numeric(name, H5T_NATIVE_FLOAT, data, shape);
}

void H5File::write_ints(const std::string& name, const int32_t* data,
                        const std::vector<int64_t>& shape) {
  write_numeric(name, H5T_NATIVE_INT32, data, shape);
}

void H5File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  if (auto slash = name.rfind('/'); slash != std::string::npos && slash > 0)
    ensure_group(name.substr(0, slash));
  H5Handle type(H5Tcopy(H5T_C_S1));
  H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), name);
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), name);
  hsize_t n = values.size();
  H5Handle space(H5Screate_simple(1, &n, nullptr));
  H5Handle dset(H5Dcreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (n > 0) H5_CHECK(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name);
}

void H5File::set_attribute(const std::string& object, const std::string& key,
                           const std::string& value) {
  H5Handle type(H5Tcopy(H5T_C_S1));
  H5_CHECK(H5Tset_size(type.get(), value.empty() ? 1 : value.size()), object);
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), object);
  H5Handle space(H5Screate(H5S_SCALAR));
  if (H5Aexists_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT) > 0)
    H5_CHECK(H5Adelete_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT), object);
  H5Handle attr(H5Acreate_by_name(file_.get(), object.c_str(), key.c_str(), type.get(),
                                  space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(attr.get(), object + "@" + key);
  H5_CHECK(H5Awrite(attr.get(), type.get(), value.c_str()), object + "@" + key);
}

void H5File::set_attribute(const std::string& object, const std::string& key, double value) {
  H5Handle space(H5Screate(H5S_SCALAR));
  if (H5Aexists_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT) > 0)
    H5_CHECK(H5Adelete_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT), object);
  H5Handle attr(H5Acreate_by_name(file_.get(), object.c_str(), key.c_str(), H5T_NATIVE_DOUBLE,
                                  space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(attr.get(), object + "@" + key);
  H5_CHECK(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &value), object + "@" + key);
}

std::vector<float> H5File::read_floats(const std::string& name, std::vector<int64_t>* shape) const {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5Handle space(H5Dget_space(dset.get()));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  H5_CHECK(rank, name);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  size_t n = 1;
  for (hsize_t d : dims) n *= d;
  std::vector<float> out(n);
  if (n > 0)
    H5_CHECK(H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), name);
  if (shape) shape->assign(dims.begin(), dims.end());
  return out;
}

std::string H5File::read_string_attribute(const std::string& object, const std::string& key) const {
  H5Handle attr(H5Aopen_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(attr.get(), object + "@" + key);
  H5Handle type(H5Aget_type(attr.get()));
  H5_CHECK(type.get(), object + "@" + key);
  if (H5Tget_class(type.get()) != H5T_STRING)
    throw InputError(path_.string(), object + "@" + key, "attribute is not a string");
  H5Handle mem(H5Tcopy(type.get()));  // same size and character set as stored
  if (H5Tis_variable_str(type.get()) > 0) {
    char* text = nullptr;
    H5_CHECK(H5Aread(attr.get(), mem.get(), &text), object + "@" + key);
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  std::string value(H5Tget_size(type.get()), '\0');
  H5_CHECK(H5Aread(attr.get(), mem.get(), value.data()), object + "@" + key);
  while (!value.empty() && value.back() == '\0') value.pop_back();
  return value;
}

}  // namespace causeway
