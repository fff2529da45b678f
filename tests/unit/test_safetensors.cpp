// The safetensors reader, Checkpoint slices and writer: round trips, exact half/bfloat16
// conversion, and one test per kind of bad file, each checking the error names the file and
// the tensor or field at fault.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/safetensors.h"

namespace causeway {
namespace {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed with everything in it at scope end.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("causeway-safetensors-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file image with the given header text and `data_bytes` zero bytes of data.
std::string image(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(s.data(), &n, 8);
  return s + header + std::string(data_bytes, '\0');
}

// Runs f, which must throw InputError, and checks that what() contains every piece.
void expect_input_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
  } catch (const InputError& e) {
    const std::string what = e.what();
    for (const std::string& p : pieces)
      EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
    return;
  }
  ADD_FAILURE() << "expected an InputError mentioning " << (pieces.empty() ? "" : pieces[0]);
}

std::vector<float> iota_floats(size_t n, float start = 0.5f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = start + static_cast<float>(i) * 0.25f;
  return v;
}

// ----------------------------------------------------------------------------- round trips

TEST(SafetensorsRoundTrip, F32AndI32) {
  TempDir dir;
  const std::vector<float> w = iota_floats(6);
  const std::vector<int32_t> ids = {7, -1, 50256, 0};
  write_safetensors(dir / "model.safetensors",
                    {{"w", DType::F32, {2, 3}, w.data()}, {"ids", DType::I32, {4}, ids.data()}},
                    {{"format", "pt"}});

  // Header padded to a multiple of 8 so the data section starts aligned.
  std::ifstream in(dir / "model.safetensors", std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);

  const Checkpoint ck = Checkpoint::open(dir.path());
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"ids", "w"}));
  EXPECT_TRUE(ck.has("w"));
  EXPECT_FALSE(ck.has("__metadata__"));
  EXPECT_EQ(ck.info("w").shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ck.info("w").dtype, DType::F32);
  std::vector<float> got(6);
  ck.read("w", got.data());
  EXPECT_EQ(got, w);
  std::vector<int32_t> got_ids(4);
  ck.read_i32("ids", got_ids.data());
  EXPECT_EQ(got_ids, ids);
  EXPECT_EQ(ck.file_of("w"), (dir / "model.safetensors").string());

  // Released pages come back from the file when touched again.
  ck.release("w");
  std::fill(got.begin(), got.end(), 0.0f);
  ck.read("w", got.data());
  EXPECT_EQ(got, w);

  const SafetensorsFile f = SafetensorsFile::open(dir / "model.safetensors");
  ASSERT_NE(f.find("w"), nullptr);
  EXPECT_EQ(f.find("nope"), nullptr);
  EXPECT_EQ(std::memcmp(f.data(*f.find("w")), w.data(), 24), 0);
  // Tensors come back in data order, and tile the data section.
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "w");
  EXPECT_EQ(f.tensors()[0].begin, 0u);
  EXPECT_EQ(f.tensors()[1].begin, 24u);
}

TEST(SafetensorsRoundTrip, EmptyAndScalarTensors) {
  TempDir dir;
  const float one = 1.0f;
  write_safetensors(dir / "model.safetensors",
                    {{"empty", DType::F32, {0, 5}, nullptr}, {"scalar", DType::F32, {}, &one}});
  const Checkpoint ck = Checkpoint::open(dir.path());
  EXPECT_EQ(ck.info("empty").numel(), 0);
  float x = 0.0f;
  ck.read("scalar", &x);
  EXPECT_EQ(x, 1.0f);
  ck.read("empty", nullptr);
  ck.read_rows("empty", 0, 0, nullptr);
}

TEST(SafetensorsRoundTrip, WriterRejectsDuplicateNames) {
  TempDir dir;
  const float x = 0.0f;
  EXPECT_THROW(write_safetensors(dir / "a.safetensors",
                                 {{"x", DType::F32, {1}, &x}, {"x", DType::F32, {1}, &x}}),
               Error);
  EXPECT_THROW(write_safetensors(dir / "a.safetensors", {{"__metadata__", DType::F32, {1}, &x}}),
               Error);
  EXPECT_FALSE(fs::exists(dir / "a.safetensors"));
}

// ----------------------------------------------------------------------------- conversion

TEST(SafetensorsConvert, F16HandPicked) {
  TempDir dir;
  const std::vector<uint16_t> bits = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                      0x8000, 0x7C00, 0xFC00, 0x7E00};
  write_safetensors(dir / "model.safetensors", {{"h", DType::F16, {10}, bits.data()}});
  std::vector<float> got(bits.size());
  Checkpoint::open(dir.path()).read("h", got.data());
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], -2.5f);
  EXPECT_EQ(got[2], 65504.0f);
  EXPECT_EQ(got[3], std::ldexp(1.0f, -24));                  // smallest subnormal
  EXPECT_EQ(got[4], std::ldexp(1023.0f, -24));               // largest subnormal
  EXPECT_EQ(got[5], std::ldexp(1.0f, -14));                  // smallest normal
  EXPECT_EQ(got[6], 0.0f);
  EXPECT_TRUE(std::signbit(got[6]));                         // -0 keeps its sign
  EXPECT_EQ(got[7], std::numeric_limits<float>::infinity());
  EXPECT_EQ(got[8], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(got[9]));
}

TEST(SafetensorsConvert, F16AllBitPatterns) {
  // Reference: the IEEE binary16 definition evaluated in double.
  for (uint32_t b = 0; b < 65536; ++b) {
    const int sign = (b >> 15) ? -1 : 1, exp = (b >> 10) & 0x1F, man = b & 0x3FF;
    const float got = f16_to_f32(static_cast<uint16_t>(b));
    if (exp == 31) {
      if (man == 0)
        EXPECT_EQ(got, sign * std::numeric_limits<float>::infinity()) << b;
      else
        EXPECT_TRUE(std::isnan(got)) << b;
      continue;
    }
    const double want = exp == 0 ? sign * std::ldexp(static_cast<double>(man), -24)
                                 : sign * std::ldexp(1.0 + man / 1024.0, exp - 15);
    ASSERT_EQ(got, static_cast<float>(want)) << "bits " << b;
    ASSERT_EQ(std::signbit(got), sign < 0) << "bits " << b;
  }
}

TEST(SafetensorsConvert, BF16HandPicked) {
  TempDir dir;
  const std::vector<uint16_t> bits = {0x3F80, 0xC020, 0x477F, 0x7F7F, 0x0001,
                                      0x8000, 0x7F80, 0xFF80, 0x7FC0};
  write_safetensors(dir / "model.safetensors", {{"b", DType::BF16, {3, 3}, bits.data()}});
  std::vector<float> got(bits.size());
  Checkpoint::open(dir.path()).read("b", got.data());
  EXPECT_EQ(got[0], 1.0f);
  EXPECT_EQ(got[1], -2.5f);
  EXPECT_EQ(got[2], 65280.0f);  // bfloat16 nearest to 65504 from below
  EXPECT_EQ(got[3], std::ldexp(255.0f, 120));             // largest finite, 3.3895e38
  EXPECT_EQ(got[4], std::ldexp(1.0f, -133));              // smallest subnormal
  EXPECT_TRUE(got[5] == 0.0f && std::signbit(got[5]));
  EXPECT_EQ(got[6], std::numeric_limits<float>::infinity());
  EXPECT_EQ(got[7], -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(got[8]));
}

TEST(SafetensorsConvert, LargeTensorUsesAllBlocks) {
  // Larger than one conversion block, with a ragged tail, so the parallel split is exercised.
  TempDir dir;
  const size_t n = (size_t{1} << 17) + 37;
  std::vector<uint16_t> bits(n);
  for (size_t i = 0; i < n; ++i) bits[i] = static_cast<uint16_t>(i * 7919);
  write_safetensors(dir / "model.safetensors", {{"h", DType::F16, {static_cast<int64_t>(n)}, bits.data()}});
  std::vector<float> got(n);
  Checkpoint::open(dir.path()).read("h", got.data());
  for (size_t i = 0; i < n; ++i) {
    const float want = f16_to_f32(bits[i]);
    if (std::isnan(want))
      ASSERT_TRUE(std::isnan(got[i])) << i;
    else
      ASSERT_EQ(got[i], want) << i;
  }
}

// ----------------------------------------------------------------------------- slices

TEST(CheckpointSlices, RowsAndColumnsMatchFullRead) {
  TempDir dir;
  const std::vector<float> m = iota_floats(5 * 7), cube = iota_floats(4 * 3 * 2, -3.0f),
                           vec = iota_floats(9, 10.0f);
  std::vector<uint16_t> half(5 * 7);
  for (size_t i = 0; i < half.size(); ++i) half[i] = static_cast<uint16_t>(0x3C00 + i);
  write_safetensors(dir / "model.safetensors", {{"m", DType::F32, {5, 7}, m.data()},
                                                {"cube", DType::F32, {4, 3, 2}, cube.data()},
                                                {"vec", DType::F32, {9}, vec.data()},
                                                {"half", DType::F16, {5, 7}, half.data()}});
  const Checkpoint ck = Checkpoint::open(dir.path());

  std::vector<float> rows(3 * 7);
  ck.read_rows("m", 1, 4, rows.data());
  EXPECT_EQ(rows, std::vector<float>(m.begin() + 7, m.begin() + 28));

  std::vector<float> cols(5 * 3);
  ck.read_columns("m", 2, 5, cols.data());
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(cols[r * 3 + c], m[r * 7 + 2 + c]) << r << "," << c;

  std::vector<float> full_half(35), half_cols(5 * 4);
  ck.read("half", full_half.data());
  ck.read_columns("half", 3, 7, half_cols.data());
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(half_cols[r * 4 + c], full_half[r * 7 + 3 + c]);

  std::vector<float> cube_rows(2 * 6);
  ck.read_rows("cube", 2, 4, cube_rows.data());
  EXPECT_EQ(cube_rows, std::vector<float>(cube.begin() + 12, cube.end()));

  std::vector<float> vec_cols(4);
  ck.read_columns("vec", 5, 9, vec_cols.data());
  EXPECT_EQ(vec_cols, std::vector<float>(vec.begin() + 5, vec.end()));
  std::vector<float> vec_rows(2);
  ck.read_rows("vec", 0, 2, vec_rows.data());
  EXPECT_EQ(vec_rows, std::vector<float>(vec.begin(), vec.begin() + 2));

  const std::string file = (dir / "model.safetensors").string();
  float sink[64];
  expect_input_error([&] { ck.read_rows("m", 3, 6, sink); }, {file, "m: ", "rows [3, 6)"});
  expect_input_error([&] { ck.read_rows("m", -1, 2, sink); }, {file, "m: ", "rows [-1, 2)"});
  expect_input_error([&] { ck.read_columns("m", 4, 2, sink); }, {file, "m: ", "columns [4, 2)"});
  expect_input_error([&] { ck.read_columns("m", 0, 8, sink); }, {file, "m: ", "columns [0, 8)"});
  expect_input_error([&] { ck.read_columns("cube", 0, 1, sink); }, {file, "cube: ", "1-D or 2-D"});
}

TEST(CheckpointSlices, DtypeMismatchIsAnInputError) {
  TempDir dir;
  const std::vector<int32_t> ids = {1, 2};
  const std::vector<float> w = {1.0f, 2.0f};
  write_safetensors(dir / "model.safetensors",
                    {{"ids", DType::I32, {2}, ids.data()}, {"w", DType::F32, {2}, w.data()}});
  const Checkpoint ck = Checkpoint::open(dir.path());
  float f[2];
  int32_t i[2];
  expect_input_error([&] { ck.read("ids", f); }, {"model.safetensors", "ids", "I32"});
  expect_input_error([&] { ck.read_columns("ids", 0, 1, f); }, {"model.safetensors", "ids", "I32"});
  expect_input_error([&] { ck.read_i32("w", i); }, {"model.safetensors", "w", "expected an I32"});
}

TEST(CheckpointSharded, TwoShardsThroughTheIndex) {
  TempDir dir;
  const std::vector<float> a = iota_floats(4), b = iota_floats(6, 9.0f), c = iota_floats(2, -1.0f);
  write_safetensors(dir / "model-00001-of-00002.safetensors",
                    {{"a", DType::F32, {2, 2}, a.data()}, {"c", DType::F32, {2}, c.data()}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"b", DType::F32, {3, 2}, b.data()}});
  write_bytes(dir / "model.safetensors.index.json",
              R"({"metadata": {"total_size": 48}, "weight_map": {
                  "a": "model-00001-of-00002.safetensors",
                  "b": "model-00002-of-00002.safetensors",
                  "c": "model-00001-of-00002.safetensors"}})");
  const Checkpoint ck = Checkpoint::open(dir.path());
  EXPECT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ck.file_of("b"), (dir / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(ck.file_of("c"), (dir / "model-00001-of-00002.safetensors").string());
  std::vector<float> got_a(4), got_b(6), got_c(2), b_cols(3);
  ck.read("a", got_a.data());
  ck.read("b", got_b.data());
  ck.read("c", got_c.data());
  ck.read_columns("b", 1, 2, b_cols.data());
  EXPECT_EQ(got_a, a);
  EXPECT_EQ(got_b, b);
  EXPECT_EQ(got_c, c);
  EXPECT_EQ(b_cols, (std::vector<float>{b[1], b[3], b[5]}));
  ck.expect_shape("b", {3, 2}, "config.json");
  expect_input_error([&] { ck.info("d"); }, {"model.safetensors.index.json", "d: missing tensor"});
}

// ----------------------------------------------------------------------------- bad files

// Writes `bytes` as model.safetensors and checks that opening it fails naming the file and
// every piece.
void expect_bad_file(const std::string& bytes, const std::vector<std::string>& pieces) {
  TempDir dir;
  write_bytes(dir / "model.safetensors", bytes);
  std::vector<std::string> all = pieces;
  all.push_back((dir / "model.safetensors").string() + ": ");
  expect_input_error([&] { Checkpoint::open(dir.path()); }, all);
  expect_input_error([&] { SafetensorsFile::open(dir / "model.safetensors"); }, all);
}

TEST(SafetensorsBadFile, Truncated) {
  expect_bad_file("", {"header length: ", "truncated", "0 bytes"});
  expect_bad_file(std::string("\x10\0\0\0\0", 5), {"header length: ", "truncated", "5 bytes"});
}

TEST(SafetensorsBadFile, HeaderLengthBeyondFile) {
  std::string s = image("{}", 4);
  s[0] = static_cast<char>(0xE8), s[1] = 0x03;  // 1000
  expect_bad_file(s, {"header length: ", "header length 1000 exceeds file size 14"});
  std::string huge(8, '\xFF');
  expect_bad_file(huge + "{}", {"header length: ", "exceeds file size 10"});
}

TEST(SafetensorsBadFile, MalformedHeaderJson) {
  expect_bad_file(image(R"({"w": {"dtype": "F32", )", 0), {"header: ", "malformed JSON"});
  expect_bad_file(image("[1, 2]", 0), {"header: ", "must be a JSON object"});
  expect_bad_file(image("", 0), {"header: ", "malformed JSON"});
  expect_bad_file(image("{\"w\": 3}", 0), {"w: ", "must be an object"});
}

TEST(SafetensorsBadFile, UnknownDtype) {
  expect_bad_file(image(R"({"w": {"dtype": "Q7", "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"w: ", "unsupported dtype \"Q7\""});
  expect_bad_file(image(R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4),
                  {"w: ", "dtype must be a string"});
}

TEST(SafetensorsBadFile, UnsupportedDtypeF64) {
  expect_bad_file(image(R"({"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}})", 8),
                  {"w: ", "unsupported dtype F64"});
  expect_bad_file(image(R"({"mask": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]}})", 1),
                  {"mask: ", "unsupported dtype BOOL"});
}

TEST(SafetensorsBadFile, OffsetsOutOfRange) {
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 8),
                  {"w: ", "data_offsets [0, 16] are out of range", "holds 8 bytes"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8),
                  {"w: ", "out of range"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, -4]}})", 8),
                  {"w: ", "data_offsets must be [begin, end]"});
}

TEST(SafetensorsBadFile, SizeDisagreesWithShape) {
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}})", 12),
                  {"w: ", "hold 12 bytes, but F32 shape [2, 2] needs 16"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [4611686018427387904],
                                   "data_offsets": [0, 0]}})", 0),
                  {"w: ", "needs more than 2^64"});
  expect_bad_file(image(R"({"w": {"dtype": "F16", "shape": [4294967296, 4294967296],
                                   "data_offsets": [0, 0]}})", 0),
                  {"w: ", "too many elements"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 8]}})", 8),
                  {"w: ", "shape must hold non-negative integers"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}})", 8),
                  {"w: ", "shape must hold non-negative integers"});
  expect_bad_file(image(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", 8),
                  {"w: ", "missing shape"});
}

TEST(SafetensorsBadFile, OverlapGapAndDuplicate) {
  expect_bad_file(image(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12),
                  {"b: ", "overlap"});
  expect_bad_file(image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})", 12),
                  {"b: ", "leave a gap"});
  expect_bad_file(image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", 8),
                  {"header: ", "cover 4 bytes but the data section holds 8"});
  expect_bad_file(image(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                            "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", 8),
                  {"a: ", "appears twice"});
  expect_bad_file(image(R"({"a": {"dtype": "F32", "dtype": "F16", "shape": [1],
                            "data_offsets": [0, 4]}})", 4),
                  {"header: ", "key \"dtype\" appears twice"});
  expect_bad_file(image(R"({"__metadata__": {"format": 1}})", 0), {"__metadata__: "});
}

TEST(SafetensorsHeader, MetadataIsSkippedAndPaddingAllowed) {
  const auto ts = parse_safetensors_header(
      R"({"__metadata__": {"format": "pt"}, "z": {"dtype": "BF16", "shape": [2, 1],
          "data_offsets": [4, 8]}, "y": {"dtype": "I32", "shape": [], "data_offsets": [0, 4]}})"
      "    ",
      8, "mem");
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].name, "y");  // data order
  EXPECT_EQ(ts[0].dtype, DType::I32);
  EXPECT_TRUE(ts[0].shape.empty());
  EXPECT_EQ(ts[1].name, "z");
  EXPECT_EQ(ts[1].shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ts[1].begin, 4u);
  EXPECT_EQ(ts[1].end, 8u);
}

TEST(CheckpointErrors, MissingTensor) {
  TempDir dir;
  const float x = 1.0f;
  write_safetensors(dir / "model.safetensors", {{"x", DType::F32, {1}, &x}});
  const Checkpoint ck = Checkpoint::open(dir.path());
  float sink;
  const std::string file = (dir / "model.safetensors").string();
  expect_input_error([&] { ck.info("h.0.ln_1.weight"); }, {file, "h.0.ln_1.weight: missing tensor"});
  expect_input_error([&] { ck.read("h.0.ln_1.weight", &sink); }, {file, "h.0.ln_1.weight"});
  expect_input_error([&] { ck.file_of("y"); }, {file, "y: missing tensor"});
}

TEST(CheckpointErrors, ExpectShapeMismatch) {
  TempDir dir;
  std::vector<float> w(64 * 192, 0.0f);
  write_safetensors(dir / "model.safetensors", {{"h.0.attn.c_attn.weight", DType::F32, {64, 192}, w.data()}});
  const Checkpoint ck = Checkpoint::open(dir.path());
  ck.expect_shape("h.0.attn.c_attn.weight", {64, 192}, "config.json");
  try {
    ck.expect_shape("h.0.attn.c_attn.weight", {64, 128}, "config.json");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              (dir / "model.safetensors").string() +
                  ": h.0.attn.c_attn.weight: shape [64, 192] disagrees with config.json "
                  "(expected [64, 128])");
    EXPECT_EQ(e.field(), "h.0.attn.c_attn.weight");
  }
}

TEST(CheckpointErrors, MissingModelDirContents) {
  TempDir dir;
  expect_input_error([&] { Checkpoint::open(dir.path()); },
                     {dir.path().string(), "no model.safetensors or model.safetensors.index.json"});
  expect_input_error([&] { Checkpoint::open(dir / "absent"); },
                     {(dir / "absent").string(), "not a folder"});
}

TEST(CheckpointErrors, IndexReferencesMissingShard) {
  TempDir dir;
  const float x = 1.0f;
  write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", DType::F32, {1}, &x}});
  write_bytes(dir / "model.safetensors.index.json",
              R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                 "b": "model-00002-of-00002.safetensors"}})");
  const std::string index = (dir / "model.safetensors.index.json").string();
  expect_input_error([&] { Checkpoint::open(dir.path()); },
                     {index, "b: ", "model-00002-of-00002.safetensors does not exist"});
}

TEST(CheckpointErrors, MalformedIndex) {
  TempDir dir;
  const float x = 1.0f;
  write_safetensors(dir / "shard.safetensors", {{"a", DType::F32, {1}, &x}});
  const fs::path index = dir / "model.safetensors.index.json";
  write_bytes(index, R"({"weight_map": {"a": )");
  expect_input_error([&] { Checkpoint::open(dir.path()); }, {index.string(), "malformed JSON"});
  write_bytes(index, R"({"metadata": {}})");
  expect_input_error([&] { Checkpoint::open(dir.path()); }, {index.string(), "weight_map"});
  write_bytes(index, R"({"weight_map": {"a": 3}})");
  expect_input_error([&] { Checkpoint::open(dir.path()); }, {index.string(), "a: "});
  write_bytes(index, R"({"weight_map": {"a": "../shard.safetensors"}})");
  expect_input_error([&] { Checkpoint::open(dir.path()); }, {index.string(), "a: ", "inside"});
  write_bytes(index, R"({"weight_map": {"zz": "shard.safetensors"}})");
  expect_input_error([&] { Checkpoint::open(dir.path()); },
                     {index.string(), "zz: ", "has no such tensor"});
}

TEST(CheckpointErrors, BadShardNamesTheShard) {
  TempDir dir;
  write_bytes(dir / "s.safetensors", "abc");
  write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "s.safetensors"}})");
  expect_input_error([&] { Checkpoint::open(dir.path()); },
                     {(dir / "s.safetensors").string(), "truncated"});
}

}  // namespace
}  // namespace causeway
