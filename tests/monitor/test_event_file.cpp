// TensorBoard event files: the reader accepts a file PyTorch's SummaryWriter wrote
// (../shared/test-vectors), the writer reproduces PyTorch's bytes record for record,
// corruption is caught, and TensorBoard's own reader accepts flowrun's output.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "stages/monitor/event_file.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

std::string pytorch_file() { return source_dir() + "/../shared/test-vectors/pytorch-summarywriter.tfevents"; }

// The records of a file as raw protobuf bytes (framing checked by read_event_file).
std::vector<std::string> records(const std::string& path) {
  const std::string bytes = read_file(path);
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos + 12 <= bytes.size();) {
    std::uint64_t n;
    std::memcpy(&n, bytes.data() + pos, 8);
    out.push_back(bytes.substr(pos + 12, n));
    pos += 12 + n + 4;
  }
  return out;
}

TEST(EventFile, Crc32cKnownVector) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(crc32c("", 0), 0u);
}

TEST(EventFile, ReadsWhatPyTorchsSummaryWriterWrote) {
  const auto events = read_event_file(pytorch_file());
  ASSERT_EQ(events.size(), 101u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  for (int step = 0; step < 100; ++step) {
    const Event& e = events[static_cast<std::size_t>(step) + 1];
    EXPECT_EQ(e.step, step);
    ASSERT_EQ(e.scalars.size(), 1u);
    EXPECT_EQ(e.scalars[0].tag, "y=2x");
    EXPECT_EQ(e.scalars[0].value, 2.0f * step);
    EXPECT_GT(e.wall_time, 1.5e9);
  }
}

TEST(EventFile, EncodesScalarEventsByteForByteAsPyTorchDoes) {
  const auto raw = records(pytorch_file());
  ASSERT_EQ(raw.size(), 101u) << "the shared test vector is missing or changed: " << pytorch_file();
  for (std::size_t i = 1; i < raw.size(); ++i) EXPECT_EQ(encode_event(decode_event(raw[i])), raw[i]) << "record " << i;
}

TEST(EventFile, WriterOutputReadsBackWithValidFraming) {
  TempDir dir;
  std::string path;
  {
    EventFileWriter w(dir.path() + "/tb");
    path = w.path();
    w.add_scalar("Loss/train", 2.5f, 10, 1700000000.25);
    w.add_scalar("Accuracy/val", 0.75f, 20);
  }
  EXPECT_NE(fs::path(path).filename().string().find("events.out.tfevents."), std::string::npos);
  const auto events = read_event_file(path);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[1].wall_time, 1700000000.25);
  EXPECT_EQ(events[1].step, 10);
  EXPECT_EQ(events[1].scalars[0].tag, "Loss/train");
  EXPECT_EQ(events[1].scalars[0].value, 2.5f);
  EXPECT_EQ(events[2].scalars[0].tag, "Accuracy/val");
}

TEST(EventFile, CorruptionIsReportedWithTheRecordNumber) {
  TempDir dir;
  std::string bytes = read_file(pytorch_file());
  ASSERT_GT(bytes.size(), 100u) << "the shared test vector is missing: " << pytorch_file();
  bytes[bytes.size() - 10] ^= 0x40;  // inside the last record's data
  const std::string path = dir.write("bad.tfevents", bytes);
  try {
    read_event_file(path);
    FAIL() << "a flipped bit must fail the data CRC";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("record 100"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data CRC mismatch"), std::string::npos) << e.what();
  }
}

// TensorBoard's own reader (event_accumulator, from the tensorboard package that
// scripts/setup.sh installs) loads flowrun's file with the same tags, steps, values.
TEST(EventFile, TensorBoardsReaderAcceptsFlowrunsFile) {
  TempDir dir;
  {
    EventFileWriter w(dir.path() + "/tb");
    for (int step = 1; step <= 5; ++step) {
      w.add_scalar("Loss/train", 3.0f / step, step);
      w.add_scalar("LR", 1e-3f * step, step);
    }
  }
  const std::string cmd = source_dir() + "/.venv/bin/python " + source_dir() + "/tools/check_tensorboard_events.py " +
                          dir.path() + "/tb 'Loss/train=1:3,2:1.5,3:1,4:0.75,5:0.6' 'LR=1:0.001,5:0.005' > " +
                          dir.path() + "/log.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.path() + "/log.txt");
}

// A resumed run's restart marker: TensorBoard's reader drops what the interrupted run
// wrote from the marker's step on, so each step shows once, with the resumed run's
// value. Without the marker the replayed steps show twice (the check can fail).
TEST(EventFile, RestartMarkerMakesTensorBoardShowEachStepOnce) {
  Event marker;
  marker.step = 3;
  marker.session_status = Event::kSessionStart;
  EXPECT_EQ(decode_event(encode_event(marker)).session_status, Event::kSessionStart);
  EXPECT_EQ(decode_event(encode_event(marker)).step, 3);
  TempDir dir;
  for (const bool restart : {true, false}) {
    const std::string logdir = dir.path() + (restart ? "/with" : "/without");
    {
      EventFileWriter interrupted(logdir);
      for (int step = 1; step <= 5; ++step) interrupted.add_scalar("Loss/train", 10.0f + step, step);
    }
    EventFileWriter resumed(logdir);
    if (restart) resumed.add_restart(3);
    for (int step = 3; step <= 6; ++step) resumed.add_scalar("Loss/train", 20.0f + step, step);
  }
  const std::string check = source_dir() + "/.venv/bin/python " + source_dir() + "/tools/check_tensorboard_events.py ";
  std::string cmd = check + dir.path() + "/with --unique --count Loss/train=6 'Loss/train=1:11,2:12,3:23,6:26' > " +
                    dir.path() + "/log.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.path() + "/log.txt");
  cmd = check + dir.path() + "/without --unique > " + dir.path() + "/log2.txt 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0) << read_file(dir.path() + "/log2.txt");
  EXPECT_NE(read_file(dir.path() + "/log2.txt").find("steps repeat"), std::string::npos) << read_file(dir.path() + "/log2.txt");
}

}  // namespace
}  // namespace flowrun::testing
