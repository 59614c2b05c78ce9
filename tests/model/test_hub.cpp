// Pretrained-weight resolution: local files and folders, hub ids downloaded into the
// cache from a loopback server (with the published SHA-256 checked), offline errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "lib/io/digest.hpp"
#include "lib/model/hub.hpp"
#include "support/http_server.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

// Points the cache and the hub endpoint somewhere harmless for one test.
class HubEnv {
 public:
  HubEnv(const std::string& cache, const std::string& endpoint, bool offline = false) {
    setenv("FLOWRUN_CACHE", cache.c_str(), 1);
    setenv("FLOWRUN_HUB_ENDPOINT", endpoint.c_str(), 1);
    if (offline) setenv("FLOWRUN_OFFLINE", "1", 1);
  }
  ~HubEnv() {
    unsetenv("FLOWRUN_CACHE");
    unsetenv("FLOWRUN_HUB_ENDPOINT");
    unsetenv("FLOWRUN_OFFLINE");
  }
};

TEST(Hub, RecognisesHubIdsAndLocalPaths) {
  EXPECT_TRUE(looks_like_hub_id("google/vit-base-patch16-224-in21k"));
  EXPECT_FALSE(looks_like_hub_id("weights.safetensors"));
  EXPECT_FALSE(looks_like_hub_id("runs/x.safetensors"));
  EXPECT_FALSE(looks_like_hub_id("../up/two"));
  EXPECT_FALSE(looks_like_hub_id("/abs/path"));
  TempDir dir;
  const std::string file = dir.write("model.safetensors", "x");
  EXPECT_EQ(resolve_pretrained(file), file);
  EXPECT_EQ(resolve_pretrained(dir.path()), file) << "a folder means its model.safetensors";
  EXPECT_THROW(resolve_pretrained(dir.path() + "/nothing.safetensors"), std::runtime_error);
}

TEST(Hub, DownloadsIntoTheCacheOnceAndChecksThePublishedSha256) {
  LocalHttpServer server;
  const std::string weights(200000, 'w');
  Sha256 hasher;
  hasher.update(weights.data(), weights.size());
  const std::string sha = hasher.hex_digest();
  server.serve("/org/tiny-vit/resolve/main/model.safetensors", weights);
  server.serve("/api/models/org/tiny-vit?blobs=true",
               R"({"siblings": [{"rfilename": "config.json"}, {"rfilename": "model.safetensors", "lfs": {"sha256": ")" +
                   sha + R"(", "size": 200000}}]})");
  TempDir cache;
  HubEnv env(cache.path(), server.url(""));
  const std::string path = resolve_pretrained("org/tiny-vit");
  EXPECT_EQ(path, cache.path() + "/hub/org--tiny-vit/model.safetensors");
  EXPECT_EQ(read_file(path), weights);
  const int requests = server.requests();
  EXPECT_EQ(resolve_pretrained("org/tiny-vit"), path);
  EXPECT_EQ(server.requests(), requests) << "a cached file is not fetched again";
}

TEST(Hub, AChecksumMismatchKeepsNothing) {
  LocalHttpServer server;
  server.serve("/org/bad/resolve/main/model.safetensors", "tampered bytes");
  server.serve("/api/models/org/bad?blobs=true",
               R"({"siblings": [{"rfilename": "model.safetensors", "lfs": {"sha256": ")" + std::string(64, 'a') + R"("}}]})");
  TempDir cache;
  HubEnv env(cache.path(), server.url(""));
  try {
    resolve_pretrained("org/bad");
    FAIL() << "a mismatching download must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("put " + server.url("/org/bad/resolve/main/model.safetensors")), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(cache.path() + "/hub/org--bad/model.safetensors"));
}

TEST(Hub, OfflineWithoutACachedCopySaysWhichFileToPutWhere) {
  TempDir cache;
  HubEnv env(cache.path(), "http://127.0.0.1:9", /*offline=*/true);
  try {
    resolve_pretrained("google/vit-base-patch16-224-in21k");
    FAIL();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("offline and no cached copy"), std::string::npos) << what;
    EXPECT_NE(what.find(cache.path() + "/hub/google--vit-base-patch16-224-in21k/model.safetensors"), std::string::npos)
        << what;
  }
}

}  // namespace
}  // namespace flowrun::testing
