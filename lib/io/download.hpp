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
  // Keep what arrived in PATH.part when a transfer breaks, and continue from there
  // (HTTP Range) next time: for large weight files. Without it nothing partial is kept.
  bool resume = false;
  long connect_timeout_s = 30;
};

// Fetches `url` into `path`. Throws std::runtime_error naming the URL (HTTP status,
// network error, checksum mismatch). Nothing partial is ever left at `path`; beside
// it only PATH.part, and only with `resume` after a broken transfer.
void download_file(const std::string& url, const std::string& path, const DownloadOptions& options = {});

}  // namespace flowrun
