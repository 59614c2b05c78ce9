#include "stages/io/download.hpp"

#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "stages/io/md5.hpp"
#include "stages/io/sha256.hpp"

namespace flowrun {
namespace {

struct Transfer {
  AtomicFile* file = nullptr;
  Md5 md5;
  Sha256 sha256;
  std::string url;
  std::chrono::steady_clock::time_point last_report = std::chrono::steady_clock::now();
  std::string write_error;
};

std::size_t on_data(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  try {
    t->file->write(std::string(data, bytes));
  } catch (const std::exception& e) {
    t->write_error = e.what();
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  t->md5.update(data, bytes);
  t->sha256.update(data, bytes);
  return bytes;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  const auto clock = std::chrono::steady_clock::now();
  if (clock - t->last_report < std::chrono::seconds(2)) return 0;
  t->last_report = clock;
  const double mb = static_cast<double>(now) / 1e6;
  if (total > 0) {
    log::info("downloading ", t->url, ": ", log::fixed(mb, 1), " / ", log::fixed(static_cast<double>(total) / 1e6, 1),
              " MB (", log::fixed(100.0 * static_cast<double>(now) / static_cast<double>(total), 0), "%)");
  } else {
    log::info("downloading ", t->url, ": ", log::fixed(mb, 1), " MB");
  }
  return 0;
}

}  // namespace

void download_file(const std::string& url, const std::string& path, const DownloadOptions& options) {
  std::filesystem::create_directories(std::filesystem::absolute(path).parent_path());
  AtomicFile file(path);  // removed again unless committed
  Transfer transfer;
  transfer.file = &file;
  transfer.url = url;
  CURL* curl = curl_easy_init();
  if (!curl) throw std::runtime_error("cannot start libcurl to download " + url);
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error, not a body to save
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, options.timeout_s);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "flowrun");
  log::info("downloading ", url, " to ", path);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    std::string why = !transfer.write_error.empty() ? transfer.write_error : (error[0] ? error : curl_easy_strerror(rc));
    throw std::runtime_error("download of " + url + " failed: " + why);
  }
  const std::string md5 = transfer.md5.hex_digest();
  if (!options.expected_md5.empty() && md5 != options.expected_md5) {
    throw std::runtime_error("download of " + url + " has MD5 " + md5 + ", expected " + options.expected_md5 +
                             " (corrupted or changed at the source); nothing was kept");
  }
  const std::string sha256 = transfer.sha256.hex_digest();
  if (!options.expected_sha256.empty() && sha256 != options.expected_sha256) {
    throw std::runtime_error("download of " + url + " has SHA-256 " + sha256 + ", expected " +
                             options.expected_sha256 + " (corrupted or changed at the source); nothing was kept");
  }
  file.commit();
  log::info("downloaded ", url, " (MD5 ", md5, ", SHA-256 ", sha256, ")");
}

}  // namespace flowrun
