#include "lib/io/download.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>
#include <stdexcept>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "lib/io/digest.hpp"

namespace flowrun {
namespace {

// Where the bytes go: an AtomicFile (all or nothing) or, when resuming, PATH.part
// opened for appending.
struct Transfer {
  AtomicFile* file = nullptr;
  std::FILE* part = nullptr;
  std::uint64_t resumed_from = 0;  // bytes already in PATH.part when the request went out
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
    if (t->part) {
      if (std::fwrite(data, 1, bytes, t->part) != bytes) throw std::runtime_error("cannot write the partial download");
    } else {
      t->file->write(std::string(data, bytes));
    }
  } catch (const std::exception& e) {
    t->write_error = e.what();
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  t->md5.update(data, bytes);
  t->sha256.update(data, bytes);
  return bytes;
}

// Hashes what a previous attempt left in PATH.part; returns its size.
std::uint64_t hash_existing(const std::string& part, Transfer& t) {
  std::FILE* in = std::fopen(part.c_str(), "rb");
  if (!in) return 0;
  std::vector<char> chunk(1 << 20);
  std::uint64_t total = 0;
  for (std::size_t n; (n = std::fread(chunk.data(), 1, chunk.size(), in)) > 0; total += n) {
    t.md5.update(chunk.data(), n);
    t.sha256.update(chunk.data(), n);
  }
  std::fclose(in);
  return total;
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
  const std::string part_path = path + ".part";
  std::unique_ptr<AtomicFile> file;
  Transfer transfer;
  transfer.url = url;
  if (options.resume) {
    transfer.resumed_from = hash_existing(part_path, transfer);
    transfer.part = std::fopen(part_path.c_str(), "ab");
    if (!transfer.part) throw std::runtime_error("cannot write " + part_path);
  } else {
    file = std::make_unique<AtomicFile>(path);  // removed again unless committed
    transfer.file = file.get();
  }
  const auto close_part = [&] {
    if (transfer.part) std::fclose(transfer.part);
    transfer.part = nullptr;
  };
  CURL* curl = curl_easy_init();
  if (!curl) {
    close_part();
    throw std::runtime_error("cannot start libcurl to download " + url);
  }
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
  if (transfer.resumed_from > 0) {
    curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(transfer.resumed_from));
    log::info("resuming ", url, " from byte ", transfer.resumed_from, " (", part_path, ")");
  } else {
    log::info("downloading ", url, " to ", path);
  }
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  close_part();
  if (rc != CURLE_OK) {
    std::string why = !transfer.write_error.empty() ? transfer.write_error : (error[0] ? error : curl_easy_strerror(rc));
    if (options.resume && rc == CURLE_RANGE_ERROR && transfer.resumed_from > 0) {
      // The server cannot continue a transfer: drop what we had and fetch it whole.
      log::warn(url, " cannot be resumed (the server ignores byte ranges): starting over");
      std::remove(part_path.c_str());
      return download_file(url, path, options);
    }
    throw std::runtime_error("download of " + url + " failed: " + why +
                             (options.resume ? "; what arrived is kept in " + part_path + ", run again to resume" : ""));
  }
  const std::string md5 = transfer.md5.hex_digest();
  const std::string sha256 = transfer.sha256.hex_digest();
  const auto mismatch = [&](const char* kind, const std::string& got, const std::string& want) {
    if (options.resume) std::remove(part_path.c_str());
    throw std::runtime_error("download of " + url + " has " + kind + " " + got + ", expected " + want +
                             " (corrupted or changed at the source); nothing was kept");
  };
  if (!options.expected_md5.empty() && md5 != options.expected_md5) mismatch("MD5", md5, options.expected_md5);
  if (!options.expected_sha256.empty() && sha256 != options.expected_sha256)
    mismatch("SHA-256", sha256, options.expected_sha256);
  if (options.resume) {
    const int fd = ::open(part_path.c_str(), O_RDONLY);  // on disk before it takes the final name
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    if (std::rename(part_path.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + part_path);
  } else {
    file->commit();
  }
  log::info("downloaded ", url, " (MD5 ", md5, ", SHA-256 ", sha256, ")");
}

}  // namespace flowrun
