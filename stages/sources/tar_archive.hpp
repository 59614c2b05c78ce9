// Read-only access to an uncompressed tar file: the member index is built once
// by walking the 512-byte headers (ustar, GNU long names, pax path/size records),
// and member bytes are read in place from a memory mapping: no extraction, no copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace flowrun {

class TarArchive : public std::enable_shared_from_this<TarArchive> {
 public:
  struct Member {
    std::string name;
    std::uint64_t offset = 0;  // of the data, from the start of the file
    std::uint64_t size = 0;
  };

  // Maps and indexes `path`. Throws std::runtime_error naming the file and the
  // offset for anything that is not a well-formed tar (bad checksum, truncation).
  static std::shared_ptr<const TarArchive> open(const std::string& path);
  // The same over bytes already in memory (a decompressed .tar.gz); `name` is for messages.
  static std::shared_ptr<const TarArchive> from_bytes(std::vector<std::uint8_t> bytes, const std::string& name);
  ~TarArchive();
  TarArchive(const TarArchive&) = delete;
  TarArchive& operator=(const TarArchive&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<Member>& members() const { return members_; }  // regular files, in file order
  const std::uint8_t* data(const Member& m) const { return base_ + m.offset; }

 private:
  explicit TarArchive(std::string path);
  TarArchive(std::vector<std::uint8_t> bytes, std::string name);
  void index();

  std::string path_;
  const std::uint8_t* base_ = nullptr;
  std::size_t size_ = 0;
  std::vector<Member> members_;
  std::vector<std::uint8_t> owned_;  // from_bytes: the data itself (no mapping)
  bool mapped_ = false;
};

}  // namespace flowrun
