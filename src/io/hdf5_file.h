// A thin RAII layer over the HDF5 C API. Every status goes through one check that throws
// with the call, the file and the object it was working on (openPMD-api's habit).
// Serial and parallel files share this code; only the file-access property list differs.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace causeway {

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
  const std::filesystem::path& path() const { return path_; }
  hid_t id() const { return file_.get(); }

  // Creates intermediate groups as needed ("/experiments/ioi/effect").
  void write_floats(const std::string& name, const float* data, const std::vector<int64_t>& shape);
  void write_ints(const std::string& name, const int32_t* data, const std::vector<int64_t>& shape);
  void write_strings(const std::string& name, const std::vector<std::string>& values);
  void set_attribute(const std::string& object, const std::string& key, const std::string& value);
  void set_attribute(const std::string& object, const std::string& key, double value);
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
  std::filesystem::path path_;
  H5Handle file_;
};

// Throws causeway::Error naming the HDF5 call, the file and the object if `status` < 0.
void h5_check(int64_t status, const char* call, const std::filesystem::path& file,
              const std::string& object);

}  // namespace causeway
