// TensorBoard event files, written and read without TensorFlow or protobuf.
//
// A file is a sequence of TFRecords: uint64 length (little-endian), masked CRC-32C of
// those 8 bytes, the record (a serialized tensorflow.Event protobuf), masked CRC-32C
// of the record. The Event fields used (tensorflow/core/util/event.proto):
//   1 wall_time double, 2 step int64, 3 file_version string ("brain.Event:2"),
//   5 summary: Summary { repeated Value value = 1 }, Value { 1 tag string, 2 simple_value float }
//   7 session_log: SessionLog { 1 status enum (1 = START) }
// which is what PyTorch's SummaryWriter.add_scalar (and its purge_step) writes and
// TensorBoard reads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace flowrun {

std::uint32_t crc32c(const void* data, std::size_t size);
std::uint32_t masked_crc32c(const void* data, std::size_t size);  // TFRecord's masking

struct EventScalar {
  std::string tag;
  float value = 0;
};

struct Event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;          // set in a file's first event only
  std::vector<EventScalar> scalars;  // simple_value summaries
  // SessionLog status; kSessionStart marks a restart: TensorBoard's reader drops the
  // events it has read with this step or a later one (the run is replaying them).
  static constexpr int kSessionStart = 1;
  int session_status = 0;
};

// Appends events to LOGDIR/events.out.tfevents.<seconds>.<host>.flowrun (the
// name TensorBoard looks for). The file-version event goes first. Each event is
// flushed to the OS when written, so a viewer sees it at once and a crash loses at
// most the event being written (TensorBoard skips a torn final record).
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::string& logdir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void add_scalar(const std::string& tag, float value, std::int64_t step, double wall_time = -1);
  // A run resumed from a checkpoint continues at `step`: TensorBoard forgets what the
  // interrupted run wrote from there on, so each step shows once (SummaryWriter's purge_step).
  void add_restart(std::int64_t step);
  void write(const Event& event);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Every event of a file, checking both CRCs of every record. Throws
// std::runtime_error naming the file, the record number and what is wrong.
std::vector<Event> read_event_file(const std::string& path);

// The protobuf bytes of one Event, and back (exposed for tests).
std::string encode_event(const Event& event);
Event decode_event(const std::string& bytes);

}  // namespace flowrun
