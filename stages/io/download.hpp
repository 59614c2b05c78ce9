// Downloading one file over HTTP(S) with libcurl: progress in the log, a checksum
// check, and never a partial file under the final name (the bytes go to a
// temporary file beside it, renamed only once complete and verified). Datasets use
// it now; pretrained weights will too.
#pragma once

#include <string>

namespace flowrun {

struct DownloadOptions {
  std::string expected_md5;     // lower-case hex; "" = no check
  std::string expected_sha256;  // lower-case hex; "" = no check
  long timeout_s = 0;        // whole transfer; 0 = none
  long connect_timeout_s = 30;
};

// Fetches `url` into `path`. Throws std::runtime_error naming the URL (HTTP status,
// network error, checksum mismatch); on failure nothing is left at `path` or beside it.
void download_file(const std::string& url, const std::string& path, const DownloadOptions& options = {});

}  // namespace flowrun
