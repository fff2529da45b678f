// The result file's attributes carry HDF5 types (issue 10): numbers as numbers, flags as the
// int8 enum {FALSE, TRUE} that h5py reads as numpy.bool_; and every dimension of effect, mean,
// baselines and cached activations is labelled with its axis name as well as having its scale.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <hdf5_hl.h>

#include <fstream>
#include <string>

#include "cli_support.h"
#include "io/hdf5_file.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;
const fs::path kData = fs::path(CAUSEWAY_SOURCE_DIR) / "tests/data";

// A finished run of one attribution (qk_fix) and one noise experiment on the tiny model.
class ResultFileTypes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fixtures::TempDir("types");
    out_ = dir_->path() / "run.h5";
    std::ofstream(dir_->path() / "run.toml") << "[model]\npath = \"" << (kData / "tiny-gpt2").string()
        << "\"\nthreads = 1\n\n[data]\nfile = \"" << (kData / "tiny-gpt2-patching-pairs.jsonl").string()
        << "\"\n\n[output]\npath = \"" << out_.string() << "\"\ncache = [\"blocks.0.attn.hook_z\"]\n\n"
        << "[[experiment]]\nname = \"atp\"\nkind = \"attribution\"\nsweep = \"attn_head_out\"\n"
        << "positions = \"all\"\n"
        << "qk_fix = true\n\n"
        << "[[experiment]]\nname = \"traced\"\nkind = \"noise\"\nsweep = \"resid_pre\"\n"
        << "positions = \"each\"\n"
        << "noise_scale = 2.5\nnoise_samples = 3\n";
    const fixtures::CliResult r = fixtures::run_causeway("run " + (dir_->path() / "run.toml").string() + " --quiet");
    ASSERT_EQ(r.code, 0) << r.output;
  }
  static void TearDownTestSuite() { delete dir_; }

  struct Attr {
    H5T_class_t cls;
    size_t size;
    double number;
    int enum_members;
    std::string enum_names;
  };
  static Attr attribute(const std::string& object, const std::string& key) {
    H5File f(out_, H5Mode::ReadOnly);
    H5Handle a(H5Aopen_by_name(f.id(), object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
    EXPECT_GE(a.get(), 0) << object << "@" << key;
    H5Handle t(H5Aget_type(a.get()));
    Attr r{H5Tget_class(t.get()), H5Tget_size(t.get()), 0.0, 0, ""};
    if (r.cls == H5T_INTEGER || r.cls == H5T_FLOAT) {
      H5Aread(a.get(), H5T_NATIVE_DOUBLE, &r.number);
    } else if (r.cls == H5T_ENUM) {
      int8_t v = -1;
      H5Aread(a.get(), H5T_NATIVE_INT8, &v);
      r.number = v;
      r.enum_members = H5Tget_nmembers(t.get());
      for (int i = 0; i < r.enum_members; ++i) {
        char* name = H5Tget_member_name(t.get(), static_cast<unsigned>(i));
        r.enum_names += std::string(i ? "," : "") + name;
        H5free_memory(name);
      }
    }
    return r;
  }
  static std::vector<std::string> labels(const std::string& dataset) {
    H5File f(out_, H5Mode::ReadOnly);
    H5Handle d(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT));
    EXPECT_GE(d.get(), 0) << dataset;
    H5Handle space(H5Dget_space(d.get()));
    std::vector<std::string> out;
    for (int i = 0; i < H5Sget_simple_extent_ndims(space.get()); ++i) {
      char buf[64] = {};
      H5DSget_label(d.get(), static_cast<unsigned>(i), buf, sizeof(buf));
      out.push_back(buf);
    }
    return out;
  }

  static inline fixtures::TempDir* dir_ = nullptr;
  static inline fs::path out_;
};

TEST_F(ResultFileTypes, FlagsAreBooleanEnums) {
  for (const char* key : {"qk_fix", "grad_drop"}) {
    const Attr a = attribute("/experiments/atp", key);
    EXPECT_EQ(a.cls, H5T_ENUM) << key;
    EXPECT_EQ(a.size, 1u) << key;
    EXPECT_EQ(a.enum_names, "FALSE,TRUE") << key;
    EXPECT_EQ(a.number, std::string(key) == "qk_fix" ? 1.0 : 0.0) << key;
  }
}

TEST_F(ResultFileTypes, NumbersAreNumbers) {
  const Attr scale = attribute("/experiments/traced", "noise_scale");
  EXPECT_EQ(scale.cls, H5T_FLOAT);
  EXPECT_DOUBLE_EQ(scale.number, 2.5);
  const Attr samples = attribute("/experiments/traced", "noise_samples");
  EXPECT_EQ(samples.cls, H5T_INTEGER);
  EXPECT_EQ(samples.number, 3.0);
  const Attr elapsed = attribute("/meta", "elapsed_seconds");
  EXPECT_EQ(elapsed.cls, H5T_FLOAT);
  EXPECT_GT(elapsed.number, 0.0);
  for (const char* e : {"/experiments/atp", "/experiments/traced"}) {
    const Attr compute = attribute(e, "compute_seconds");
    EXPECT_EQ(compute.cls, H5T_FLOAT) << e;
    EXPECT_GE(compute.number, 0.0) << e;
  }
  EXPECT_EQ(attribute("/experiments/atp", "kind").cls, H5T_STRING);
}

TEST_F(ResultFileTypes, AxesAreLabelled) {
  EXPECT_EQ(labels("/experiments/atp/effect"), (std::vector<std::string>{"pair", "layer", "head"}));
  EXPECT_EQ(labels("/experiments/atp/mean"), (std::vector<std::string>{"layer", "head"}));
  EXPECT_EQ(labels("/experiments/traced/effect"), (std::vector<std::string>{"pair", "layer", "pos"}));
  EXPECT_EQ(labels("/experiments/traced/baselines/clean_metric"), (std::vector<std::string>{"pair"}));
  EXPECT_EQ(labels("/activations/blocks.0.attn.hook_z/clean"),
            (std::vector<std::string>{"pair", "pos", "head", "d_head"}));
}

// Text attributes and string datasets are variable-length UTF-8 (issue 19), so h5py reads them
// as str rather than numpy.bytes_.
TEST_F(ResultFileTypes, TextIsVariableLengthUtf8) {
  H5File f(out_, H5Mode::ReadOnly);
  auto check = [](hid_t type, const std::string& what) {
    EXPECT_EQ(H5Tget_class(type), H5T_STRING) << what;
    EXPECT_GT(H5Tis_variable_str(type), 0) << what;
    EXPECT_EQ(H5Tget_cset(type), H5T_CSET_UTF8) << what;
  };
  for (const auto& [object, key] : std::vector<std::pair<std::string, std::string>>{
           {"/experiments/atp", "kind"}, {"/experiments/traced", "sweep"}, {"/meta", "config"},
           {"/meta", "model_config"}, {"/meta", "weights_fingerprint"}, {"/", "schema"}}) {
    H5Handle a(H5Aopen_by_name(f.id(), object.c_str(), key.c_str(), H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_GE(a.get(), 0) << object << "@" << key;
    H5Handle t(H5Aget_type(a.get()));
    check(t.get(), object + "@" + key);
  }
  H5Handle d(H5Dopen2(f.id(), "/data/position_labels", H5P_DEFAULT));
  ASSERT_GE(d.get(), 0);
  H5Handle t(H5Dget_type(d.get()));
  check(t.get(), "/data/position_labels");
  EXPECT_EQ(f.read_string_attribute("/experiments/atp", "kind"), "attribution");
}

// Files written before issue 19 hold fixed-length, NUL-padded string attributes; resume checks
// read both forms. A vlen attribute keeps multi-byte UTF-8 and the empty string exactly; a byte
// that is not UTF-8 is written as "<0xC9>", as position labels are.
TEST(ResultFileStrings, ReadsFixedAndVariableLengthAttributes) {
  const char* const kUtf8 = "caf\xc3\xa9 \xe2\x86\x92 na\xc3\xafve";
  fixtures::TempDir dir("strings");
  const fs::path path = dir.path() / "s.h5";
  {
    H5File f(path, H5Mode::Create);
    f.ensure_group("/meta");
    H5Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), 12);
    H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
    H5Handle space(H5Screate(H5S_SCALAR));
    H5Handle a(H5Acreate_by_name(f.id(), "/meta", "old", type.get(), space.get(), H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT));
    const char old_text[12] = "fixed";
    ASSERT_GE(H5Awrite(a.get(), type.get(), old_text), 0);
    a.close();
    f.set_attribute("/meta", "utf8", std::string(kUtf8));
    f.set_attribute("/meta", "empty", std::string());
    f.set_attribute("/meta", "partial", std::string("to \xC9"));  // a byte-level token's byte
    f.set_attribute("/meta", "new", std::string("first"));
    f.set_attribute("/meta", "new", std::string("replaced"));
    f.close();
  }
  H5File f(path, H5Mode::ReadOnly);
  EXPECT_EQ(f.read_string_attribute("/meta", "old"), "fixed");
  EXPECT_EQ(f.read_string_attribute("/meta", "new"), "replaced");
  EXPECT_EQ(f.read_string_attribute("/meta", "empty"), "");
  EXPECT_EQ(f.read_string_attribute("/meta", "utf8"), kUtf8);
  EXPECT_EQ(f.read_string_attribute("/meta", "partial"), "to <0xC9>");  // declared UTF-8, is UTF-8
}

}  // namespace
}  // namespace causeway
