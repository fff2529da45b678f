// A thin RAII layer over the HDF5 C API. Every status goes through one check that throws
// with the call, the file and the object it was working on (openPMD-api's habit).
// Serial and parallel files share this code; only the file-access property list differs.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "core/error.h"

namespace causeway {

// A write, flush or close that the file system refused (full disk, quota, I/O error). It is the
// machine's state, not a bug, so it is reported like bad input: one line, exit 2.
class IoError : public InputError {
 public:
  explicit IoError(const std::string& message) : InputError("", "", message) {}
};

// A typed attribute value: strings as UTF-8, integers as int64, reals as double, booleans as
// the enum {FALSE=0, TRUE=1} over int8 that h5py reads as numpy.bool_.
using AttributeValue = std::variant<std::string, int64_t, double, bool>;

// Owns one hid_t and closes it with the right H5*close for its type.
class H5Handle {
 public:
  H5Handle() = default;
  explicit H5Handle(hid_t id) : id_(id) {}
  H5Handle(H5Handle&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  H5Handle& operator=(H5Handle&& o) noexcept;
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle();
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now and returns the status (the destructor cannot report a failed close).
  herr_t close();
  // Forgets the id without closing it.
  void release() { id_ = H5I_INVALID_HID; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

enum class H5Mode { Create, CreateExclusive, ReadOnly, ReadWrite };

enum class H5Elem { Float32, UInt8 };

class H5File {
 public:
  H5File(const std::filesystem::path& path, H5Mode mode);
  // Opens an existing file on every rank of `comm` through MPI-IO (parallel HDF5); each rank
  // then writes its own hyperslabs of datasets that already exist, independently.
  H5File(const std::filesystem::path& path, MPI_Comm comm);
  H5File(H5File&&) = default;
  H5File& operator=(H5File&&) = default;
  // Closes the file, except while an exception unwinds: a write failed (full disk), and closing
  // would flush HDF5's cached metadata half-way, leaving a file that no longer opens. Left
  // unclosed, the file stays as it was at its last successful close, which --resume continues.
  ~H5File();
  const std::filesystem::path& path() const { return path_; }
  // The path errors name: the final path of a file laid out under a temporary name.
  const std::filesystem::path& shown_path() const { return shown_.empty() ? path_ : shown_; }
  void show_as(const std::filesystem::path& p) { shown_ = p; }
  hid_t id() const { return file_.get(); }
  // Closes the file, checking that every buffered write reached it (a full disk often shows
  // only here), then fsyncs it. Without close() the destructor closes and ignores failures.
  void close();

  // Creates intermediate groups as needed ("/experiments/ioi/effect").
  void write_floats(const std::string& name, const float* data, const std::vector<int64_t>& shape);
  void write_ints(const std::string& name, const int32_t* data, const std::vector<int64_t>& shape);
  void write_doubles(const std::string& name, const double* data, const std::vector<int64_t>& shape);
  void write_strings(const std::string& name, const std::vector<std::string>& values);
  void set_attribute(const std::string& object, const std::string& key, const std::string& value);
  void set_attribute(const std::string& object, const std::string& key, const char* value) {
    set_attribute(object, key, std::string(value));
  }
  void set_attribute(const std::string& object, const std::string& key, double value);
  void set_attribute(const std::string& object, const std::string& key, const AttributeValue& value);
  void set_int_attribute(const std::string& object, const std::string& key, int64_t value);
  void set_bool_attribute(const std::string& object, const std::string& key, bool value);
  // Deletes a group or dataset and everything under it (a no-op when it does not exist).
  void remove(const std::string& name);
  void ensure_group(const std::string& name);

  // A dataset whose space is allocated now, filled with `fill`: later block writes then change
  // no file metadata, so a rank killed mid-run leaves a file that opens and resumes.
  void create_dataset(const std::string& name, H5Elem elem, const std::vector<int64_t>& shape,
                      const std::vector<int64_t>& chunk, double fill);
  // Writes `data` (row-major, `count` shaped) at `offset` of an existing dataset.
  void write_block(const std::string& name, const std::vector<int64_t>& offset,
                   const std::vector<int64_t>& count, const float* data);
  void write_block(const std::string& name, const std::vector<int64_t>& offset,
                   const std::vector<int64_t>& count, const uint8_t* data);
  std::vector<uint8_t> read_bytes(const std::string& name) const;
  std::vector<int32_t> read_ints(const std::string& name) const;
  std::vector<double> read_doubles(const std::string& name) const;

  std::vector<float> read_floats(const std::string& name, std::vector<int64_t>* shape = nullptr) const;
  bool exists(const std::string& name) const;
  std::string read_string_attribute(const std::string& object, const std::string& key) const;

 private:
  void write_numeric(const std::string& name, hid_t mem_type, const void* data,
                     const std::vector<int64_t>& shape);
  void write_block_of(const std::string& name, hid_t mem_type, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& count, const void* data);
  int64_t element_count(const std::string& name) const;
  void read_into(const std::string& name, hid_t mem_type, void* out) const;
  void write_attribute(const std::string& object, const std::string& key, hid_t type,
                       const void* value);
  // Closes a handle this file opened, checking the status.
  void close_checked(H5Handle& h, const std::string& object) const;
  std::filesystem::path path_, shown_;
  H5Handle file_;
  int unwinding_at_open_ = std::uncaught_exceptions();
};

// Throws if `status` < 0: IoError "no space left on device: FILE (...)" (or the system's
// message) where HDF5's error stack or the file system says why, else causeway::Error naming
// the HDF5 call, the file and the object.
void h5_check(int64_t status, const char* call, const std::filesystem::path& file,
              const std::string& object);

// Reserves `bytes` of disk past the end of `file` (fallocate, size unchanged), where HDF5's next
// allocations go, so that writes into it cannot meet a full disk: HDF5 cannot recover from a
// metadata flush that fails half-way. IoError "no space left on device" when the space is not
// there; a file system without fallocate is left as it is. release_reserve() gives back what
// the writes did not use.
void reserve_space(const std::filesystem::path& file, int64_t bytes, const std::string& what);
void release_reserve(const std::filesystem::path& file);

// Throws IoError for a failed system call on `file`: "no space left on device: FILE (what)".
[[noreturn]] void throw_io_error(int err, const std::filesystem::path& file, const std::string& what);

}  // namespace causeway
