#include "stages/monitor/event_file.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace flowrun {
namespace {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (c & 1 ? 0x82F63B78u : 0u);
    t[i] = c;
  }
  return t;
}

// Protobuf wire format: keys are (field << 3) | wire type.
enum Wire : std::uint8_t { Varint = 0, Fixed64 = 1, Bytes = 2, Fixed32 = 5 };

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, int field, Wire wire) { put_varint(out, static_cast<std::uint64_t>(field) << 3 | wire); }
template <typename T>
void put_fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // little-endian host (x86-64, aarch64)
  out.append(b, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, Bytes);
  put_varint(out, bytes.size());
  out += bytes;
}

// Reads protobuf fields from bytes it does not own: keep them alive while reading.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  bool done() const { return p_ == end_; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto byte = static_cast<std::uint8_t>(*p_++);
      v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return v;
    }
    throw std::runtime_error("malformed varint");
  }
  template <typename T>
  T fixed() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string bytes() {
    const std::uint64_t n = varint();
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  void skip(Wire wire) {
    switch (wire) {
      case Varint: varint(); break;
      case Fixed64: fixed<std::uint64_t>(); break;
      case Fixed32: fixed<std::uint32_t>(); break;
      case Bytes: bytes(); break;
      default: throw std::runtime_error("unsupported protobuf wire type " + std::to_string(wire));
    }
  }

 private:
  void need(std::uint64_t n) const {
    if (static_cast<std::uint64_t>(end_ - p_) < n) throw std::runtime_error("truncated protobuf message");
  }
  const char* p_;
  const char* end_;
};

EventScalar decode_value(const std::string& bytes) {
  EventScalar s;
  Reader r(bytes);
  while (!r.done()) {
    const std::uint64_t key = r.varint();
    const auto wire = static_cast<Wire>(key & 7);
    if ((key >> 3) == 1 && wire == Bytes) s.tag = r.bytes();
    else if ((key >> 3) == 2 && wire == Fixed32) s.value = r.fixed<float>();
    else r.skip(wire);
  }
  return s;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "host";
  return name;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::uint32_t crc32c(const void* data, std::size_t size) {
  static const auto table = make_table();
  std::uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t masked_crc32c(const void* data, std::size_t size) {
  const std::uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

std::string encode_event(const Event& e) {
  std::string out;
  put_key(out, 1, Fixed64);
  put_fixed(out, e.wall_time);
  if (e.step != 0) {
    put_key(out, 2, Varint);
    put_varint(out, static_cast<std::uint64_t>(e.step));
  }
  if (!e.file_version.empty()) put_bytes(out, 3, e.file_version);
  if (!e.scalars.empty()) {
    std::string summary;
    for (const EventScalar& s : e.scalars) {
      std::string value;
      put_bytes(value, 1, s.tag);
      put_key(value, 2, Fixed32);
      put_fixed(value, s.value);
      put_bytes(summary, 1, value);
    }
    put_bytes(out, 5, summary);
  }
  if (e.session_status != 0) {
    std::string session_log;
    put_key(session_log, 1, Varint);
    put_varint(session_log, static_cast<std::uint64_t>(e.session_status));
    put_bytes(out, 7, session_log);
  }
  return out;
}

Event decode_event(const std::string& bytes) {
  Event e;
  Reader r(bytes);
  while (!r.done()) {
    const std::uint64_t key = r.varint();
    const auto wire = static_cast<Wire>(key & 7);
    const std::uint64_t field = key >> 3;
    if (field == 1 && wire == Fixed64) {
      e.wall_time = r.fixed<double>();
    } else if (field == 2 && wire == Varint) {
      e.step = static_cast<std::int64_t>(r.varint());
    } else if (field == 3 && wire == Bytes) {
      e.file_version = r.bytes();
    } else if (field == 5 && wire == Bytes) {
      const std::string summary_bytes = r.bytes();  // Reader keeps pointers into it
      Reader summary(summary_bytes);
      while (!summary.done()) {
        const std::uint64_t k = summary.varint();
        if ((k >> 3) == 1 && static_cast<Wire>(k & 7) == Bytes) e.scalars.push_back(decode_value(summary.bytes()));
        else summary.skip(static_cast<Wire>(k & 7));
      }
    } else if (field == 7 && wire == Bytes) {
      const std::string log_bytes = r.bytes();
      Reader log(log_bytes);
      while (!log.done()) {
        const std::uint64_t k = log.varint();
        if ((k >> 3) == 1 && static_cast<Wire>(k & 7) == Varint) e.session_status = static_cast<int>(log.varint());
        else log.skip(static_cast<Wire>(k & 7));
      }
    } else {
      r.skip(wire);
    }
  }
  return e;
}

EventFileWriter::EventFileWriter(const std::string& logdir) {
  std::filesystem::create_directories(logdir);
  path_ = (std::filesystem::path(logdir) / ("events.out.tfevents." + std::to_string(static_cast<long long>(now_seconds())) +
                                            "." + host_name() + ".flowrun")).string();
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw std::runtime_error("cannot create TensorBoard event file " + path_ + ": " + std::strerror(errno));
  Event version;
  version.wall_time = now_seconds();
  version.file_version = "brain.Event:2";
  write(version);
}

EventFileWriter::~EventFileWriter() {
  if (file_) std::fclose(file_);
}

void EventFileWriter::add_scalar(const std::string& tag, float value, std::int64_t step, double wall_time) {
  Event e;
  e.wall_time = wall_time >= 0 ? wall_time : now_seconds();
  e.step = step;
  e.scalars.push_back({tag, value});
  write(e);
}

void EventFileWriter::add_restart(std::int64_t step) {
  Event e;
  e.wall_time = now_seconds();
  e.step = step;
  e.session_status = Event::kSessionStart;
  write(e);
}

void EventFileWriter::write(const Event& event) {
  const std::string data = encode_event(event);
  std::string record;
  put_fixed(record, static_cast<std::uint64_t>(data.size()));
  put_fixed(record, masked_crc32c(record.data(), 8));
  record += data;
  put_fixed(record, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0)
    throw std::runtime_error("cannot write TensorBoard event file " + path_ + ": " + std::strerror(errno));
}

std::vector<Event> read_event_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open event file " + path);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Event> events;
  std::size_t pos = 0;
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(path + ": record " + std::to_string(events.size()) + " at byte " + std::to_string(pos) +
                             ": " + what);
  };
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 12) fail("truncated record header");
    std::uint64_t length;
    std::uint32_t length_crc;
    std::memcpy(&length, bytes.data() + pos, 8);
    std::memcpy(&length_crc, bytes.data() + pos + 8, 4);
    if (length_crc != masked_crc32c(bytes.data() + pos, 8)) fail("length CRC mismatch");
    if (bytes.size() - pos - 12 < length + 4) fail("truncated record data");
    const std::string data = bytes.substr(pos + 12, length);
    std::uint32_t data_crc;
    std::memcpy(&data_crc, bytes.data() + pos + 12 + length, 4);
    if (data_crc != masked_crc32c(data.data(), data.size())) fail("data CRC mismatch");
    try {
      events.push_back(decode_event(data));
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
    pos += 12 + length + 4;
  }
  return events;
}

}  // namespace flowrun
