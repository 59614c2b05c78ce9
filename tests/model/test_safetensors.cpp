// safetensors: a file the reference Python library wrote is read with the right
// names, dtypes, shapes, values and metadata; our writer round-trips; and every way a
// header can lie is refused with the file named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "lib/model/safetensors.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  if (exponent == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(mantissa), -24);
  std::uint32_t bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(std::uint16_t b) {
  std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

double value_at(const TensorView& t, std::size_t i) {
  switch (t.dtype) {
    case DType::F32: return reinterpret_cast<const float*>(t.data)[i];
    case DType::F16: return half_to_float(reinterpret_cast<const std::uint16_t*>(t.data)[i]);
    case DType::BF16: return bf16_to_float(reinterpret_cast<const std::uint16_t*>(t.data)[i]);
    case DType::I64: return static_cast<double>(reinterpret_cast<const std::int64_t*>(t.data)[i]);
    default: throw std::invalid_argument("dtype not used by the fixture");
  }
}

TEST(Safetensors, ReadsWhatTheReferenceLibraryWrote) {
  const std::string dir = source_dir() + "/tests/fixtures/safetensors/";
  const auto expected = nlohmann::json::parse(read_file(dir + "expected.json"));
  const auto file = SafetensorsFile::open(dir + "small.safetensors");
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->tensors().size(), expected["tensors"].size());
  const std::map<std::string, std::string> dtypes = {
      {"float32", "F32"}, {"float16", "F16"}, {"bfloat16", "BF16"}, {"int64", "I64"}};
  for (const auto& [name, want] : expected["tensors"].items()) {
    const TensorView* t = file->find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(dtype_name(t->dtype), dtypes.at(want["dtype"])) << name;
    EXPECT_EQ(t->shape, want["shape"].get<std::vector<std::int64_t>>()) << name;
    const auto values = want["values"].get<std::vector<double>>();
    for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(value_at(*t, i), values[i]) << name << "[" << i << "]";
  }
}

TEST(Safetensors, WriterRoundTripsAndAlignsData) {
  TempDir dir;
  const std::vector<float> w = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -0.5f};
  const std::vector<std::int64_t> ids = {9, 8, 7};
  write_safetensors(dir.path() + "/out.safetensors",
                    {{"w", DType::F32, {2, 3}, w.data()}, {"ids", DType::I64, {3}, ids.data()}},
                    {{"format", "pt"}});
  const auto file = SafetensorsFile::open(dir.path() + "/out.safetensors");
  ASSERT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  const TensorView* t = file->find("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(t->data, w.data(), w.size() * 4), 0);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t->data) % 8, 0u) << "data should start 8-byte aligned";
  EXPECT_EQ(std::memcmp(file->find("ids")->data, ids.data(), 24), 0);
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[static_cast<std::size_t>(i)] = static_cast<char>((json.size() >> (8 * i)) & 0xff);
  return length + json + data;
}

void expect_refused(const std::string& bytes, const std::string& fragment) {
  TempDir dir;
  const std::string path = dir.write("bad.safetensors", bytes);
  try {
    SafetensorsFile::open(path);
    ADD_FAILURE() << "accepted a bad file; expected: " << fragment;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RefusesFilesWhoseHeaderLies) {
  expect_refused("abc", "shorter than the 8-byte header length");
  expect_refused(with_header("{}", "").substr(0, 8) + "{", "runs past the end");
  expect_refused(with_header("[1, 2]", ""), "not a JSON object");
  expect_refused(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", std::string(4, 'x')),
                 "outside the data");
  expect_refused(with_header(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", std::string(8, 'x')),
                 "dtype and shape need 12");
  expect_refused(with_header(R"({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}})", std::string(8, 'x')),
                 "unsupported dtype");
  expect_refused(with_header(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                             std::string(8, 'x')),
                 "overlap");
  expect_refused(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", std::string(8, 'x')),
                 "hole at byte 0");
  expect_refused(with_header(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", std::string(8, 'x')),
                 "4 unindexed bytes");
}

}  // namespace
}  // namespace flowrun::testing
