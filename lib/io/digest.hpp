// Checksums of downloads, through OpenSSL's libcrypto (EVP): MD5, because CIFAR-10
// publishes one (not for anything security-related), and SHA-256, which Hugging Face
// publishes for weight files. Streaming: update() as the bytes arrive.
#pragma once

#include <cstddef>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace flowrun {

class Digest {
 public:
  enum class Algorithm { Md5, Sha256 };
  explicit Digest(Algorithm algorithm);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes; lower-case hex

 private:
  evp_md_ctx_st* ctx_;
};

struct Md5 : Digest {
  Md5() : Digest(Algorithm::Md5) {}
};
struct Sha256 : Digest {
  Sha256() : Digest(Algorithm::Sha256) {}
};

std::string md5_of_file(const std::string& path);  // throws std::runtime_error if unreadable

}  // namespace flowrun
