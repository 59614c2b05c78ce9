// Writing a file so that readers see the old content or the new, never a torn mix:
// write to a temporary file in the same folder, fsync it, rename it over the target,
// fsync the folder. A crash (even kill -9) at any moment leaves the previous file.
//
//   AtomicFile out("metrics.json");
//   out.write(text);
//   out.commit();          // without commit(), the destructor removes the temporary
#pragma once

#include <string>

namespace flowrun {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Where to write when another library does the writing (an HDF5 file): write
  // there, close it, then commit().
  const std::string& temporary_path() const { return temp_path_; }
  void write(const std::string& bytes);  // appends
  void commit();                         // throws std::runtime_error naming the path

 private:
  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// The whole of `text` as the file at `path`, atomically (an AtomicFile written and committed).
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace flowrun
