#include "flowrun/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace flowrun {
namespace {

std::runtime_error io_error(const std::string& what, const std::string& path) {
  return std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  std::string pattern = path_ + ".tmp-XXXXXX";
  fd_ = mkstemp(pattern.data());
  if (fd_ < 0) throw io_error("cannot create a temporary file beside", path_);
  temp_path_ = pattern;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    // Emptied first: a library that wrote through its own handle (HDF5 after a failed
    // write) may keep the file open, and its blocks would stay in use until exit.
    const int emptied = ::truncate(temp_path_.c_str(), 0);
    (void)emptied;  // best effort: the file is removed next either way
    std::remove(temp_path_.c_str());
  }
}

void AtomicFile::write(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw io_error("cannot write", temp_path_);
    }
    done += static_cast<std::size_t>(n);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  // Another library may have rewritten the temporary through its own handle: sync
  // through a fresh descriptor so its bytes are on disk too.
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  const int sync_fd = ::open(temp_path_.c_str(), O_RDONLY);
  if (sync_fd < 0 || ::fsync(sync_fd) != 0) {
    if (sync_fd >= 0) ::close(sync_fd);
    throw io_error("cannot flush", temp_path_);
  }
  ::close(sync_fd);
  ::chmod(temp_path_.c_str(), 0644);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) throw io_error("cannot rename into", path_);
  committed_ = true;
  std::filesystem::path dir = std::filesystem::absolute(path_).parent_path();
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomically(const std::string& path, const std::string& text) {
  AtomicFile out(path);
  out.write(text);
  out.commit();
}

}  // namespace flowrun
