// The two sources of encoded image files in ImageFolder layout (<class>/<file>):
//
//   tar           members of one or more uncompressed tar files, read in place
//                 {"id": "train", "plugin": "tar", "params": {"paths": ["cifar10-jpeg.tar"], "prefix": "train/"}}
//   image_folder  files under a folder
//                 {"id": "train", "plugin": "image_folder", "params": {"root": "data/train"}}
//
// Both emit sample/encoded: the bytes as stored, the label (index of the class in
// sorted order) and the key (member name or path) that messages and reports show.
#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include "flowrun/logging.hpp"
#include "stages/messages/sample.hpp"
#include "stages/sources/dataset_source.hpp"
#include "stages/sources/file_names.hpp"
#include "stages/sources/source_plugins.hpp"
#include "stages/sources/tar_archive.hpp"

namespace flowrun {
namespace {
namespace fs = std::filesystem;

void sort_by_key(std::vector<DatasetRecord>& records) {
  const auto by_key = [](const DatasetRecord& a, const DatasetRecord& b) { return a.key < b.key; };
  if (std::is_sorted(records.begin(), records.end(), by_key)) return;  // tars written sorted: most are
  std::sort(records.begin(), records.end(), by_key);
}

struct TarOptions : DatasetOptions {
  std::vector<std::string> paths;
  std::string prefix;
  std::vector<std::string> extensions = default_image_extensions();
  template <typename D>
  static void declare(D& d) {
    d.required(&TarOptions::paths, "paths", "tar files (shards) to read, relative to the working folder").min_length(1);
    d(&TarOptions::prefix, "prefix", "only members whose name starts with this, e.g. \"train/\"; stripped before the class");
    d(&TarOptions::extensions, "extensions", "file endings to keep (case-insensitive)");
    declare_common(d);
  }
};

struct ImageFolderOptions : DatasetOptions {
  std::string root;
  std::vector<std::string> extensions = default_image_extensions();
  template <typename D>
  static void declare(D& d) {
    d.required(&ImageFolderOptions::root, "root", "folder holding one sub-folder per class");
    d(&ImageFolderOptions::extensions, "extensions", "file endings to keep (case-insensitive)");
    declare_common(d);
  }
};

class TarSource : public DatasetSource {
 public:
  explicit TarSource(const StageArgs& args) : TarSource(args, read_options<TarOptions>(args.params)) {}
  TarSource(const StageArgs& args, const TarOptions& o)
      : DatasetSource(args, o), paths_(o.paths), prefix_(o.prefix), extensions_(o.extensions) {}

 protected:
  std::vector<DatasetRecord> list_records() override {
    std::vector<DatasetRecord> records;
    std::size_t unlabelled = 0;
    for (const std::string& path : paths_) {
      archives_.push_back(TarArchive::open(path));
      const auto& members = archives_.back()->members();
      records.reserve(records.size() + members.size());
      for (std::size_t m = 0; m < members.size(); ++m) {
        const std::string& name = members[m].name;
        if (name.compare(0, prefix_.size(), prefix_) != 0 || !has_extension(name, extensions_)) continue;
        const std::string_view relative = std::string_view(name).substr(prefix_.size());
        const std::size_t slash = relative.find('/');
        if (slash == std::string_view::npos || slash == 0) {
          ++unlabelled;
          continue;
        }
        DatasetRecord r;
        r.key = name;
        r.class_name = relative.substr(0, slash);
        r.locator = located_.size();
        located_.push_back({archives_.size() - 1, m});
        records.push_back(std::move(r));
      }
    }
    if (unlabelled > 0) {
      log::warn("source '", node_id(), "': ", unlabelled, " members under '", prefix_,
                "' are not inside a class folder and were left out");
    }
    sort_by_key(records);
    return records;
  }

  std::shared_ptr<const Payload> read(const DatasetRecord& record) override {
    const auto [archive, member] = located_[record.locator];
    const TarArchive& tar = *archives_[archive];
    auto sample = std::make_shared<EncodedSample>();
    sample->info = sample_info(record);
    sample->data = tar.data(tar.members()[member]);
    sample->size = tar.members()[member].size;
    sample->owner = archives_[archive];  // the mapping lives as long as any sample from it
    return sample;
  }

 private:
  std::vector<std::string> paths_;
  std::string prefix_;
  std::vector<std::string> extensions_;
  std::vector<std::shared_ptr<const TarArchive>> archives_;
  std::vector<std::pair<std::size_t, std::size_t>> located_;  // (archive, member) per locator
};

class ImageFolderSource : public DatasetSource {
 public:
  explicit ImageFolderSource(const StageArgs& args)
      : ImageFolderSource(args, read_options<ImageFolderOptions>(args.params)) {}
  ImageFolderSource(const StageArgs& args, const ImageFolderOptions& o)
      : DatasetSource(args, o), root_(o.root), extensions_(o.extensions) {}

 protected:
  std::vector<DatasetRecord> list_records() override {
    if (!fs::is_directory(root_)) throw std::runtime_error("root '" + root_ + "' is not a folder");
    std::vector<DatasetRecord> records;
    for (const auto& class_dir : fs::directory_iterator(root_)) {
      if (!class_dir.is_directory()) continue;
      const std::string class_name = class_dir.path().filename().string();
      for (const auto& entry : fs::recursive_directory_iterator(class_dir.path())) {
        if (!entry.is_regular_file() || !has_extension(entry.path().filename().string(), extensions_)) continue;
        DatasetRecord r;
        r.key = entry.path().string();
        r.class_name = class_name;
        records.push_back(std::move(r));
      }
    }
    sort_by_key(records);
    return records;
  }

  // Every class folder counts, as in torchvision's ImageFolder, even one without images.
  std::vector<std::string> list_classes(const std::vector<DatasetRecord>&) const override {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(root_))
      if (entry.is_directory()) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::shared_ptr<const Payload> read(const DatasetRecord& record) override {
    auto bytes = read_file_bytes(record.key);
    auto sample = std::make_shared<EncodedSample>();
    sample->info = sample_info(record);
    sample->data = bytes->data();
    sample->size = bytes->size();
    sample->owner = std::move(bytes);
    return sample;
  }

 private:
  std::string root_;
  std::vector<std::string> extensions_;
};

}  // namespace

PluginInfo tar_source_plugin() {
  PluginInfo p;
  p.name = "tar";
  p.summary = "Encoded images in ImageFolder layout read straight from uncompressed tar files";
  p.description =
      "Indexes the members of one or more uncompressed tar files once (ustar, GNU long names and\n"
      "pax headers), then reads each image in place from a memory mapping: no extraction, no\n"
      "copy. Members under `prefix` are laid out as <class>/<file>; classes sorted by name give\n"
      "the labels. Shuffling, the stratified split and rank sharding are common to all sources.\n"
      "\n"
      "  {\"id\": \"train\", \"plugin\": \"tar\",\n"
      "   \"params\": {\"paths\": [\"../shared/data/cifar10-jpeg.tar\"], \"prefix\": \"train/\"}}";
  p.role = Role::Source;
  p.outputs = {{"out", kEncodedSampleKind, "one encoded image per item, with label and member name"}};
  declare_options<TarOptions>(p.params);
  p.check = check_dataset_node;
  p.create = [](const StageArgs& args) { return std::make_unique<TarSource>(args); };
  return p;
}

PluginInfo image_folder_source_plugin() {
  PluginInfo p;
  p.name = "image_folder";
  p.summary = "Encoded images from a folder in ImageFolder layout (root/<class>/<file>)";
  p.description =
      "Lists the files under each class folder of `root` (recursively), sorted by path; classes\n"
      "sorted by name give the labels, as torchvision's ImageFolder does. Each file is read when\n"
      "its turn comes.\n"
      "\n"
      "  {\"id\": \"train\", \"plugin\": \"image_folder\", \"params\": {\"root\": \"data/train\"}}";
  p.role = Role::Source;
  p.outputs = {{"out", kEncodedSampleKind, "one encoded image per item, with label and path"}};
  declare_options<ImageFolderOptions>(p.params);
  p.check = check_dataset_node;
  p.create = [](const StageArgs& args) { return std::make_unique<ImageFolderSource>(args); };
  return p;
}

}  // namespace flowrun
