// The cifar10 source on a release the test builds in the official format (label
// byte + R, G, B planes per record, in cifar-10-batches-bin/ inside a .tar.gz):
// read from the folder, from the archive, and downloaded from a server on
// 127.0.0.1, including a tampered download (MD5 mismatch: refused, nothing kept).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "lib/io/digest.hpp"
#include "lib/io/download.hpp"
#include "stages/core/collect.hpp"
#include "stages/messages/sample.hpp"
#include "stages/sources/dataset_source.hpp"
#include "support/http_server.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"airplane", "automobile", "bird", "cat", "deer",
                                           "dog", "frog", "horse", "ship", "truck"};

// Record k of a batch: label (batch + k) % 10; R plane = k, G = 100 + k, B = 200 (+ pixel index in R).
std::string record(int batch, int k) {
  std::string r(3073, '\0');
  r[0] = static_cast<char>((batch + k) % 10);
  for (int p = 0; p < 1024; ++p) {
    r[1 + p] = static_cast<char>((k + p) % 256);
    r[1 + 1024 + p] = static_cast<char>(100 + k);
    r[1 + 2048 + p] = static_cast<char>(200);
  }
  return r;
}

// Writes ROOT/cifar-10-batches-bin/ with `per_batch` records in each of the six files.
std::string make_release(const std::string& root, int per_batch) {
  const std::string folder = root + "/cifar-10-batches-bin";
  fs::create_directories(folder);
  const std::vector<std::string> names = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                          "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (std::size_t b = 0; b < names.size(); ++b) {
    std::ofstream out(folder + "/" + names[b], std::ios::binary);
    for (int k = 0; k < per_batch; ++k) out << record(static_cast<int>(b), k);
  }
  std::ofstream meta(folder + "/batches.meta.txt");
  for (const auto& c : kClasses) meta << c << "\n";
  return folder;
}

// The release packed as cifar-10-binary.tar.gz inside `dir`; returns its bytes.
std::string make_archive(const std::string& dir, int per_batch) {
  make_release(dir + "/staging", per_batch);
  const std::string cmd = "cd " + dir + "/staging && tar -czf " + dir + "/cifar-10-binary.tar.gz cifar-10-batches-bin";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  fs::remove_all(dir + "/staging");
  return read_file(dir + "/cifar-10-binary.tar.gz");
}

std::unique_ptr<Pipeline> cifar(const std::string& params) {
  return std::make_unique<Pipeline>(describe(R"({"name": "c", "nodes": [
      {"id": "src", "plugin": "cifar10", "params": )" + params + R"(},
      {"id": "sink", "plugin": "collect"}], "edges": ["src -> sink"]})"));
}

TEST(Md5, KnownVectors) {
  const auto md5 = [](const std::string& s) {
    Md5 m;
    m.update(s.data(), s.size());
    return m.hex_digest();
  };
  EXPECT_EQ(md5(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5("The quick brown fox jumps over the lazy dog"), "9e107d9d372bb6826bd81d3542a419d6");
  EXPECT_EQ(md5(std::string(1000, 'a')), "cabe45dcc9ae5b66ba86600cca6b8ba8");
}

TEST(Sha256, KnownVectors) {
  const auto sha = [](const std::string& s) {
    Sha256 h;
    h.update(s.data(), s.size());
    return h.hex_digest();
  };
  EXPECT_EQ(sha(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Download, Sha256MismatchKeepsNothing) {
  TempDir root;
  LocalHttpServer server;
  server.serve("/weights.safetensors", "not the published bytes");
  DownloadOptions options;
  options.expected_sha256 = std::string(64, '0');
  try {
    download_file(server.url("/weights.safetensors"), root.path() + "/weights.safetensors", options);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("SHA-256"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(root.path()));
  Sha256 h;
  h.update("published", 9);
  server.serve("/ok.bin", "published");
  options.expected_sha256 = h.hex_digest();
  download_file(server.url("/ok.bin"), root.path() + "/ok.bin", options);
  EXPECT_EQ(read_file(root.path() + "/ok.bin"), "published");
}

std::string pseudo_random_bytes(std::size_t n) {
  std::string bytes(n, '\0');
  Rng rng(77);
  for (auto& c : bytes) c = static_cast<char>(rng.below(256));
  return bytes;
}

TEST(Download, ResumesABrokenTransferFromWhereItStopped) {
  TempDir root;
  LocalHttpServer server;
  const std::string weights = pseudo_random_bytes(300000);
  server.serve("/w.bin", weights, /*break_after=*/120000);
  Sha256 h;
  h.update(weights.data(), weights.size());
  DownloadOptions options;
  options.resume = true;
  options.expected_sha256 = h.hex_digest();
  const std::string path = root.path() + "/w.bin";
  try {
    download_file(server.url("/w.bin"), path, options);
    FAIL() << "the transfer was cut; it should fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("run again to resume"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(path)) << "a partial file must never take the final name";
  EXPECT_EQ(fs::file_size(path + ".part"), 120000u);
  download_file(server.url("/w.bin"), path, options);  // a range request for the rest
  EXPECT_EQ(read_file(path), weights);
  EXPECT_FALSE(fs::exists(path + ".part"));
}

TEST(Download, StartsOverWhenTheServerIgnoresTheRange) {
  TempDir root;
  LocalHttpServer server;
  const std::string weights = pseudo_random_bytes(50000);
  server.serve("/w.bin", weights);
  server.honour_ranges(false);
  const std::string path = root.path() + "/w.bin";
  std::ofstream(path + ".part", std::ios::binary) << weights.substr(0, 1000) << "garbage";
  Sha256 h;
  h.update(weights.data(), weights.size());
  DownloadOptions options;
  options.resume = true;
  options.expected_sha256 = h.hex_digest();
  download_file(server.url("/w.bin"), path, options);
  EXPECT_EQ(read_file(path), weights);
}

TEST(Cifar10, ReadsTheExtractedFolderAsHwcImages) {
  TempDir dir;
  make_release(dir.path(), 4);
  auto train = cifar(R"({"root": ")" + dir.path() + R"(", "shuffle": false})");
  auto test = cifar(R"({"root": ")" + dir.path() + R"(", "subset": "test"})");
  train->run();
  test->run();
  auto& source = dynamic_cast<DatasetSource&>(*train->stage("src"));
  EXPECT_EQ(source.classes(), kClasses);
  EXPECT_EQ(source.records().size(), 20u);
  EXPECT_EQ(dynamic_cast<DatasetSource&>(*test->stage("src")).records().size(), 4u);
  // Record 3 of data_batch_2: label (1 + 3) % 10 = 4 (deer).
  const DatasetRecord* r = nullptr;
  for (const auto& rec : source.records())
    if (rec.key == "data_batch_2.bin#00003") r = &rec;
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->label, 4);
  EXPECT_EQ(r->class_name, "deer");
}

TEST(Cifar10, PixelsArePlanarRgbTurnedIntoHwc) {
  TempDir dir;
  make_release(dir.path(), 2);
  auto p = cifar(R"({"root": ")" + dir.path() + R"(", "shuffle": false})");
  auto& source = dynamic_cast<DatasetSource&>(*p->stage("src"));
  source.start();
  SourceItem item;
  ASSERT_TRUE(source.next(item));  // data_batch_1.bin#00000
  const Image& image = dynamic_cast<const ImageSample&>(*item.payload).image;
  ASSERT_EQ(image.height, 32);
  ASSERT_EQ(image.width, 32);
  const int p5 = 5;  // pixel 5: R = (0 + 5), G = 100, B = 200
  EXPECT_EQ(image.u8[p5 * 3], 5);
  EXPECT_EQ(image.u8[p5 * 3 + 1], 100);
  EXPECT_EQ(image.u8[p5 * 3 + 2], 200);
}

TEST(Cifar10, ReadsTheArchiveWithoutExtracting) {
  TempDir dir;
  make_archive(dir.path(), 3);
  auto p = cifar(R"({"root": ")" + dir.path() + R"("})");
  const RunReport report = p->run();
  EXPECT_EQ(report.nodes[0].items, 15u);
  EXPECT_FALSE(fs::exists(dir.path() + "/cifar-10-batches-bin"));
}

TEST(Cifar10, MissingDataSaysWhatToPutWhere) {
  TempDir dir;
  auto p = cifar(R"({"root": ")" + dir.path() + R"("})");
  try {
    p->run();
    FAIL();
  } catch (const NodeError& e) {
    EXPECT_NE(std::string(e.what()).find("expected " + dir.path() + "/cifar-10-binary.tar.gz"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("\"download\": true"), std::string::npos) << e.what();
  }
}

TEST(Cifar10, DownloadsChecksAndKeepsTheArchive) {
  TempDir source_dir, root;
  const std::string bytes = make_archive(source_dir.path(), 2);
  LocalHttpServer server;
  server.serve("/cifar-10-binary.tar.gz", bytes);
  const std::string md5 = md5_of_file(source_dir.path() + "/cifar-10-binary.tar.gz");
  auto p = cifar(R"({"root": ")" + root.path() + "/data" + R"(", "download": true, "url": ")" +
                 server.url("/cifar-10-binary.tar.gz") + R"(", "md5": ")" + md5 + R"("})");
  const RunReport report = p->run();
  EXPECT_EQ(report.nodes[0].items, 10u);
  EXPECT_EQ(read_file(root.path() + "/data/cifar-10-binary.tar.gz"), bytes);
  // A second run uses the kept archive: no new request.
  const int requests = server.requests();
  cifar(R"({"root": ")" + root.path() + "/data" + R"(", "download": true, "url": ")" +
        server.url("/cifar-10-binary.tar.gz") + R"("})")
      ->run();
  EXPECT_EQ(server.requests(), requests);
}

TEST(Cifar10, TamperedDownloadIsRefusedAndNothingIsKept) {
  TempDir source_dir, root;
  std::string bytes = make_archive(source_dir.path(), 2);
  const std::string md5 = md5_of_file(source_dir.path() + "/cifar-10-binary.tar.gz");
  bytes[bytes.size() / 2] ^= 0x55;
  LocalHttpServer server;
  server.serve("/cifar-10-binary.tar.gz", bytes);
  auto p = cifar(R"({"root": ")" + root.path() + R"(", "download": true, "url": ")" +
                 server.url("/cifar-10-binary.tar.gz") + R"(", "md5": ")" + md5 + R"("})");
  try {
    p->run();
    FAIL();
  } catch (const NodeError& e) {
    EXPECT_NE(std::string(e.what()).find("expected " + md5), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nothing was kept"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(root.path())) << "a partial or unverified file was left behind";
}

TEST(Cifar10, HttpErrorsNameTheUrl) {
  TempDir root;
  LocalHttpServer server;
  auto p = cifar(R"({"root": ")" + root.path() + R"(", "download": true, "url": ")" + server.url("/missing.tar.gz") +
                 R"("})");
  try {
    p->run();
    FAIL();
  } catch (const NodeError& e) {
    EXPECT_NE(std::string(e.what()).find(server.url("/missing.tar.gz")), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(root.path()));
}

}  // namespace
}  // namespace flowrun::testing
