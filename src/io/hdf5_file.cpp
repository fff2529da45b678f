#include "io/hdf5_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/utf8.h"

namespace causeway {

#define H5_CHECK(expr, object) h5_check(static_cast<int64_t>(expr), #expr, shown_path(), object)

namespace {
// HDF5 prints its own error stack to stderr by default; causeway reports errors itself. Files
// are closed explicitly: HDF5's exit-time clean-up would flush a file whose close already
// failed (full disk) once more and crash inside the library.
struct SilenceHdf5 {
  SilenceHdf5() {
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
};
const SilenceHdf5 silence_hdf5;

std::vector<hsize_t> dims_of(const std::vector<int64_t>& shape) {
  return std::vector<hsize_t>(shape.begin(), shape.end());
}
}  // namespace

namespace {

// What the system said about a failed HDF5 call, read off HDF5's error stack: the sec2 driver
// records "errno = 28, error message = 'No space left on device'", MPI-IO its error string.
struct SystemReason {
  std::string message;
  bool no_space = false;
};

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

herr_t collect_reason(unsigned, const H5E_error2_t* e, void* data) {
  auto* r = static_cast<SystemReason*>(data);
  if (!e || !e->desc) return 0;
  const std::string desc = e->desc;
  if (const size_t at = desc.find("error message = '"); at != std::string::npos && r->message.empty()) {
    const size_t start = at + 17, end = desc.find('\'', start);
    r->message = desc.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  const std::string l = lower(desc);
  if (l.find("errno = 28,") != std::string::npos || l.find("no space") != std::string::npos ||
      l.find("no_space") != std::string::npos)
    r->no_space = true;
  return 0;
}

// Calls that may need room in the file system; only for them does a full disk explain a failure.
bool writes(const std::string& call) {
  for (const char* w : {"write", "close", "create", "flush", "delete", "alloc", "set_scale",
                        "attach_scale", "set_label"})
    if (call.find(w) != std::string::npos) return true;
  return false;
}

bool disk_full(const std::filesystem::path& file) {
  std::filesystem::path dir = file.parent_path();
  if (dir.empty()) dir = ".";
  struct statvfs st {};
  return ::statvfs(dir.c_str(), &st) == 0 && st.f_bavail == 0;
}

}  // namespace

void throw_io_error(int err, const std::filesystem::path& file, const std::string& what) {
  if (err == ENOSPC) throw IoError("no space left on device: " + file.string() + " (" + what + ")");
  std::string m = lower(std::strerror(err));
  throw IoError(m + ": " + file.string() + " (" + what + ")");
}

void reserve_space(const std::filesystem::path& file, int64_t bytes, const std::string& what) {
  const int fd = ::open(file.c_str(), O_RDWR);
  if (fd < 0) throw_io_error(errno, file, "opening to reserve space");
  struct stat st {};
  int rc = ::fstat(fd, &st);
  if (rc == 0) rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, bytes);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EOPNOTSUPP && err != ENOSYS)
    throw_io_error(err, file, "reserving " + std::to_string((bytes + 1023) / 1024) + " KiB " + what);
}

void release_reserve(const std::filesystem::path& file) {
  // Truncating to the current size frees blocks preallocated past the end.
  const int fd = ::open(file.c_str(), O_RDWR);
  if (fd < 0) return;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    const int failed = ::ftruncate(fd, st.st_size);  // then the reserve merely stays allocated
    (void)failed;
  }
  ::close(fd);
}

void h5_check(int64_t status, const char* call, const std::filesystem::path& file,
              const std::string& object) {
  if (status >= 0) return;
  SystemReason r;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_reason, &r);
  const std::string where = "at " + object;
  if (r.no_space || (r.message.empty() && writes(call) && disk_full(file)))
    throw IoError("no space left on device: " + file.string() + " (" + where + ")");
  if (!r.message.empty())
    throw IoError(lower(r.message) + ": " + file.string() + " (" + where + ")");
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

namespace {
herr_t close_id(hid_t id) {
  switch (H5Iget_type(id)) {
    case H5I_FILE: return H5Fclose(id);
    case H5I_GROUP: return H5Gclose(id);
    case H5I_DATASET: return H5Dclose(id);
    case H5I_DATASPACE: return H5Sclose(id);
    case H5I_DATATYPE: return H5Tclose(id);
    case H5I_ATTR: return H5Aclose(id);
    case H5I_GENPROP_LST: return H5Pclose(id);
    default: return 0;
  }
}
}  // namespace

H5Handle::~H5Handle() {
  if (id_ >= 0) close_id(id_);
}

herr_t H5Handle::close() {
  if (id_ < 0) return 0;
  const hid_t id = id_;
  id_ = H5I_INVALID_HID;
  return close_id(id);
}

void H5File::close_checked(H5Handle& h, const std::string& object) const {
  h5_check(h.close(), "H5close (flushes buffered writes)", shown_path(), object);
}

H5File::~H5File() {
  if (file_ && std::uncaught_exceptions() > unwinding_at_open_) file_.release();
}

void H5File::close() {
  if (!file_) return;
  h5_check(file_.close(), "H5Fclose (flushes buffered writes)", shown_path(), "file close");
  const int fd = ::open(path_.c_str(), O_RDONLY);
  if (fd < 0) throw_io_error(errno, shown_path(), "opening to fsync");
  const int synced = ::fsync(fd), err = errno;
  ::close(fd);
  if (synced != 0) throw_io_error(err, shown_path(), "fsync");
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
    partial.append("/").append(name, start, end - start);
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
    partial.append("/").append(name, start, end - start);
    if (H5Lexists(file_.get(), partial.c_str(), H5P_DEFAULT) <= 0) {
      H5Handle g(H5Gcreate2(file_.get(), partial.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      H5_CHECK(g.get(), partial);
      close_checked(g, partial);
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
  close_checked(dset, name);
  close_checked(space, name);
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
  H5_CHECK(dcpl.get(), name);
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
  close_checked(dset, name);
  close_checked(dcpl, name);
  close_checked(space, name);
}

void H5File::write_block_of(const std::string& name, hid_t mem_type,
                            const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                            const void* data) {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5Handle space(H5Dget_space(dset.get()));
  H5_CHECK(space.get(), name);
  const auto start = dims_of(offset), n = dims_of(count);
  H5_CHECK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, n.data(), nullptr),
           name);
  H5Handle mem(H5Screate_simple(static_cast<int>(n.size()), n.data(), nullptr));
  H5_CHECK(mem.get(), name);
  H5_CHECK(H5Dwrite(dset.get(), mem_type, mem.get(), space.get(), H5P_DEFAULT, data), name);
  close_checked(mem, name);
  close_checked(space, name);
  close_checked(dset, name);
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
  H5_CHECK(space.get(), name);
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  H5_CHECK(count, name);
  close_checked(space, name);
  close_checked(dset, name);
  return count;
}

void H5File::read_into(const std::string& name, hid_t mem_type, void* out) const {
  H5Handle dset(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  H5_CHECK(H5Dread(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), name);
  close_checked(dset, name);
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

void H5File::write_doubles(const std::string& name, const double* data,
                           const std::vector<int64_t>& shape) {
  write_numeric(name, H5T_NATIVE_DOUBLE, data, shape);
}

std::vector<double> H5File::read_doubles(const std::string& name) const {
  std::vector<double> out(static_cast<size_t>(element_count(name)));
  if (!out.empty()) read_into(name, H5T_NATIVE_DOUBLE, out.data());
  return out;
}

void H5File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  if (auto slash = name.rfind('/'); slash != std::string::npos && slash > 0)
    ensure_group(name.substr(0, slash));
  H5Handle type(H5Tcopy(H5T_C_S1));
  H5_CHECK(type.get(), name);
  H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), name);
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), name);
  hsize_t n = values.size();
  H5Handle space(H5Screate_simple(1, &n, nullptr));
  H5_CHECK(space.get(), name);
  H5Handle dset(H5Dcreate2(file_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                           H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(dset.get(), name);
  // The type says UTF-8: bytes that are not (a byte-level token holding part of a character,
  // as in /data/wrong_text) are written as "<0xC9>", so every reader can decode the text.
  std::vector<std::string> text;
  text.reserve(values.size());
  for (const auto& v : values) text.push_back(escape_invalid_utf8(v));
  std::vector<const char*> ptrs;
  for (const auto& v : text) ptrs.push_back(v.c_str());
  if (n > 0) H5_CHECK(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), name);
  close_checked(dset, name);
  close_checked(space, name);
  close_checked(type, name);
}

void H5File::write_attribute(const std::string& object, const std::string& key, hid_t type,
                             const void* value) {
  const std::string where = object + "@" + key;
  H5Handle space(H5Screate(H5S_SCALAR));
  H5_CHECK(space.get(), where);
  const htri_t exists = H5Aexists_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT);
  H5_CHECK(exists, where);
  if (exists > 0)
    H5_CHECK(H5Adelete_by_name(file_.get(), object.c_str(), key.c_str(), H5P_DEFAULT), where);
  H5Handle attr(H5Acreate_by_name(file_.get(), object.c_str(), key.c_str(), type, space.get(),
                                  H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  H5_CHECK(attr.get(), where);
  H5_CHECK(H5Awrite(attr.get(), type, value), where);
  close_checked(attr, where);
  close_checked(space, where);
}

void H5File::set_attribute(const std::string& object, const std::string& key,
                           const std::string& value) {
  // Variable-length UTF-8, as write_strings stores text: h5py reads it as str, not np.bytes_.
  // Files written before stored fixed-length strings; read_string_attribute reads both.
  H5Handle type(H5Tcopy(H5T_C_S1));
  H5_CHECK(type.get(), object + "@" + key);
  H5_CHECK(H5Tset_size(type.get(), H5T_VARIABLE), object);
  H5_CHECK(H5Tset_cset(type.get(), H5T_CSET_UTF8), object);
  const std::string utf8 = escape_invalid_utf8(value);  // as in write_strings
  const char* text = utf8.c_str();
  write_attribute(object, key, type.get(), &text);
  close_checked(type, object + "@" + key);
}

void H5File::set_attribute(const std::string& object, const std::string& key, double value) {
  write_attribute(object, key, H5T_NATIVE_DOUBLE, &value);
}

void H5File::set_int_attribute(const std::string& object, const std::string& key, int64_t value) {
  write_attribute(object, key, H5T_NATIVE_INT64, &value);
}

void H5File::set_bool_attribute(const std::string& object, const std::string& key, bool value) {
  // h5py's own boolean type: an int8 enum with exactly the members FALSE = 0 and TRUE = 1.
  const std::string where = object + "@" + key;
  H5Handle type(H5Tenum_create(H5T_NATIVE_INT8));
  H5_CHECK(type.get(), where);
  const int8_t no = 0, yes = 1, v = value ? 1 : 0;
  H5_CHECK(H5Tenum_insert(type.get(), "FALSE", &no), where);
  H5_CHECK(H5Tenum_insert(type.get(), "TRUE", &yes), where);
  write_attribute(object, key, type.get(), &v);
  close_checked(type, where);
}

void H5File::set_attribute(const std::string& object, const std::string& key,
                           const AttributeValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) set_attribute(object, key, *s);
  else if (const auto* i = std::get_if<int64_t>(&value)) set_int_attribute(object, key, *i);
  else if (const auto* d = std::get_if<double>(&value)) set_attribute(object, key, *d);
  else set_bool_attribute(object, key, std::get<bool>(value));
}

void H5File::remove(const std::string& name) {
  if (!exists(name)) return;
  H5_CHECK(H5Ldelete(file_.get(), name.c_str(), H5P_DEFAULT), name);
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
