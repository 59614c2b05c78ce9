// cifar10: the official CIFAR-10 binary release (cifar-10-binary.tar.gz: records of
// one label byte and 3072 bytes of R, G and B planes, 32 x 32), read from the archive
// itself or from its extracted folder, emitted as decoded images (no JPEG step).
// With download, a missing archive is fetched from the official URL and checked
// against its published MD5 before it is kept.
//
//   {"id": "train", "plugin": "cifar10", "params": {"root": "data/cifar10", "download": true}}
#include <cstdio>
#include <filesystem>
#include <map>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "lib/io/download.hpp"
#include "lib/io/gzip.hpp"
#include "stages/messages/sample.hpp"
#include "stages/sources/dataset_source.hpp"
#include "stages/sources/source_plugins.hpp"
#include "stages/sources/tar_archive.hpp"

namespace flowrun {
namespace {
namespace fs = std::filesystem;

constexpr const char* kOfficialUrl = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
constexpr const char* kOfficialMd5 = "c32a1d4ab5d03f1284b67883e8d87530";
constexpr const char* kArchiveName = "cifar-10-binary.tar.gz";
constexpr const char* kFolderName = "cifar-10-batches-bin";
constexpr std::size_t kSide = 32;
constexpr std::size_t kPlane = kSide * kSide;
constexpr std::size_t kRecordSize = 1 + 3 * kPlane;

enum class Cifar10Subset { Train, Test };

struct Cifar10Options : DatasetOptions {
  std::string root;
  Cifar10Subset subset = Cifar10Subset::Train;
  bool download = false;
  std::string url = kOfficialUrl;
  std::string md5 = kOfficialMd5;
  template <typename D>
  static void declare(D& d) {
    using O = Cifar10Options;
    d.required(&O::root, "root", "folder holding (or to receive) cifar-10-binary.tar.gz");
    d(&O::subset, "subset", "the official training (50,000) or test (10,000) records",
      {{"train", Cifar10Subset::Train}, {"test", Cifar10Subset::Test}});
    d(&O::download, "download", "fetch the archive from url when root does not have it");
    d(&O::url, "url", "where to download the archive from");
    d(&O::md5, "md5", "expected MD5 of the archive (lower-case hex); \"\" = do not check");
    declare_common(d);
  }
};

class Cifar10Source : public DatasetSource {
 public:
  explicit Cifar10Source(const StageArgs& args) : Cifar10Source(args, read_options<Cifar10Options>(args.params)) {}
  Cifar10Source(const StageArgs& args, const Cifar10Options& o)
      : DatasetSource(args, o), root_(o.root), subset_(o.subset), download_(o.download), url_(o.url), md5_(o.md5) {}

 protected:
  std::vector<DatasetRecord> list_records() override {
    load_files();
    std::vector<DatasetRecord> records;
    const std::vector<std::string> batches =
        subset_ == Cifar10Subset::Test ? std::vector<std::string>{"test_batch.bin"}
                          : std::vector<std::string>{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                                     "data_batch_4.bin", "data_batch_5.bin"};
    for (const std::string& name : batches) {
      const std::string& bytes = file(name);
      if (bytes.size() % kRecordSize != 0) {
        throw std::runtime_error(name + " in " + where_ + " is " + std::to_string(bytes.size()) +
                                 " bytes, not a whole number of " + std::to_string(kRecordSize) + "-byte records");
      }
      for (std::size_t k = 0; k < bytes.size() / kRecordSize; ++k) {
        const auto* record = reinterpret_cast<const std::uint8_t*>(bytes.data()) + k * kRecordSize;
        if (record[0] >= class_names_.size()) {
          throw std::runtime_error(name + " record " + std::to_string(k) + " has label " + std::to_string(record[0]) +
                                   ", but batches.meta.txt names " + std::to_string(class_names_.size()) + " classes");
        }
        char key[64];
        std::snprintf(key, sizeof key, "%s#%05zu", name.c_str(), k);
        DatasetRecord r;
        r.key = key;
        r.class_name = class_names_[record[0]];
        r.locator = records_.size();
        records_.push_back(record);
        records.push_back(std::move(r));
      }
    }
    return records;
  }

  std::vector<std::string> list_classes(const std::vector<DatasetRecord>&) const override { return class_names_; }

  std::shared_ptr<const Payload> read(const DatasetRecord& record) override {
    const std::uint8_t* planes = records_[record.locator] + 1;
    auto sample = std::make_shared<ImageSample>();
    sample->info = sample_info(record);
    sample->image = Image::u8_hwc(kSide, kSide, 3);
    std::uint8_t* out = sample->image.u8.data();
    for (std::size_t p = 0; p < kPlane; ++p) {
      out[p * 3] = planes[p];
      out[p * 3 + 1] = planes[kPlane + p];
      out[p * 3 + 2] = planes[2 * kPlane + p];
    }
    return sample;
  }

 private:
  // Reads the batch files from the extracted folder, or from the archive (fetched
  // first when allowed), into memory: 180 MB for the whole release.
  void load_files() {
    files_.clear();
    records_.clear();
    const fs::path folder = fs::path(root_) / kFolderName;
    const fs::path archive = fs::path(root_) / kArchiveName;
    if (fs::is_directory(folder)) {
      where_ = folder.string();
      for (const auto& entry : fs::directory_iterator(folder)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        files_[entry.path().filename().string()] = bytes.str();
      }
    } else {
      if (!fs::exists(archive)) {
        if (!download_) {
          throw std::runtime_error("CIFAR-10 is not in '" + root_ + "': expected " + archive.string() + " (from " +
                                   url_ + ") or the folder it unpacks to, " + folder.string() +
                                   "; set \"download\": true to fetch it");
        }
        DownloadOptions options;
        options.expected_md5 = md5_;
        download_file(url_, archive.string(), options);
      }
      where_ = archive.string();
      const auto tar = TarArchive::from_bytes(gunzip_file(archive.string()), archive.string());
      for (const auto& m : tar->members()) {
        const std::string name = fs::path(m.name).filename().string();
        files_[name] = std::string(reinterpret_cast<const char*>(tar->data(m)), m.size);
      }
    }
    std::istringstream meta(file("batches.meta.txt"));
    class_names_.clear();
    for (std::string line; std::getline(meta, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) class_names_.push_back(line);
    }
  }

  const std::string& file(const std::string& name) const {
    auto it = files_.find(name);
    if (it == files_.end()) throw std::runtime_error(where_ + " has no " + name + ": is it the CIFAR-10 binary release?");
    return it->second;
  }

  std::string root_;
  Cifar10Subset subset_;
  bool download_;
  std::string url_, md5_;
  std::string where_;
  std::map<std::string, std::string> files_;  // batch file name -> bytes
  std::vector<std::string> class_names_;      // label order, from batches.meta.txt
  std::vector<const std::uint8_t*> records_;  // per locator: the record's first byte
};

}  // namespace

PluginInfo cifar10_source_plugin() {
  PluginInfo p;
  p.name = "cifar10";
  p.summary = "CIFAR-10 from its official binary release, as decoded 32x32 images";
  p.description =
      "Reads cifar-10-binary.tar.gz (or the cifar-10-batches-bin folder it unpacks to) from\n"
      "`root`: 50,000 training or 10,000 test records of a label byte and R, G, B planes. With\n"
      "download and no local copy, fetches the archive (progress in the log), checks its\n"
      "published MD5 and keeps it only when it matches. Labels follow batches.meta.txt, which is\n"
      "alphabetical. Emits decoded images: no jpeg_decode stage is needed.\n"
      "\n"
      "  {\"id\": \"train\", \"plugin\": \"cifar10\", \"params\": {\"root\": \"data/cifar10\", \"download\": true}}";
  p.role = Role::Source;
  p.outputs = {{"out", kImageSampleKind, "RGB images, uint8 32x32x3, with label"}};
  declare_options<Cifar10Options>(p.params);
  p.check = check_dataset_node;
  p.create = [](const StageArgs& args) { return std::make_unique<Cifar10Source>(args); };
  return p;
}

}  // namespace flowrun
