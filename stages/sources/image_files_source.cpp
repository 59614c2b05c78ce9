// image_files: the images a user points at, for prediction. Files, folders (searched
// recursively) and tar files, in the order given, each folder and tar sorted by name;
// one pass, no labels (-1), no shuffling. A sample's key is its path, or
// "archive.tar:member" for a tar member; it is what predictions are reported under.
//
//   {"id": "images", "plugin": "image_files", "params": {"paths": ["photos/", "more.tar", "cat.jpg"]}}
//
// Not a dataset source: there are no classes to balance, split or shard. A file that is
// not an image is left to the decode stage (its on_error decides); a path that does
// not exist fails the run at start, naming it.
#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "stages/messages/sample.hpp"
#include "stages/sources/file_names.hpp"
#include "stages/sources/source_plugins.hpp"
#include "stages/sources/tar_archive.hpp"

namespace flowrun {
namespace {
namespace fs = std::filesystem;

struct ImageFilesOptions {
  std::vector<std::string> paths;
  std::vector<std::string> extensions = default_image_extensions();
  template <typename D>
  static void declare(D& d) {
    d.required(&ImageFilesOptions::paths, "paths",
               "image files, folders (searched recursively) and uncompressed tar files, in this order")
        .min_length(1);
    d(&ImageFilesOptions::extensions, "extensions", "file endings to take from folders and tars (case-insensitive)");
  }
};

class ImageFilesSource : public SourceStage {
 public:
  explicit ImageFilesSource(const StageArgs& args)
      : SourceStage(args), options_(read_options<ImageFilesOptions>(args.params)) {}

  void start() override {
    for (const std::string& path : options_.paths) add(path);
    if (items_.empty())
      throw std::runtime_error("no images under " + join_paths() + " (file endings taken: " + join(options_.extensions) + ")");
    auto info = std::make_shared<DatasetInfo>();
    info->source = node_id();
    info->epoch_size = items_.size();
    info->epochs = 1;
    info_ = std::move(info);
    log::info("source '", node_id(), "': ", items_.size(), " images");
  }

  bool next(SourceItem& item) override {
    if (position_ > items_.size()) return false;
    if (position_ == items_.size()) {
      item.signal = Signal::EpochEnd;
      item.epoch = 0;
      ++position_;
      return true;
    }
    const Item& at = items_[position_];
    auto sample = std::make_shared<EncodedSample>();
    sample->info = SampleInfo(-1, at.key);
    sample->info.dataset = info_;
    sample->info.position = position_;
    if (at.archive) {
      const TarArchive::Member& member = at.archive->members()[at.member];
      sample->data = at.archive->data(member);
      sample->size = member.size;
      sample->owner = at.archive;
    } else {
      auto bytes = read_file_bytes(*at.key);
      sample->data = bytes->data();
      sample->size = bytes->size();
      sample->owner = std::move(bytes);
    }
    item.signal = Signal::Data;
    item.epoch = 0;
    item.index = position_++;
    item.payload = std::move(sample);
    return true;
  }

 private:
  struct Item {
    std::shared_ptr<const std::string> key;
    std::shared_ptr<const TarArchive> archive;  // null: a file of its own
    std::size_t member = 0;
  };

  void add(const std::string& path) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw std::runtime_error("no such file or folder: " + path);
    if (fs::is_directory(status)) {
      std::vector<std::string> files;
      for (const auto& entry : fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink))
        if (entry.is_regular_file() && has_extension(entry.path().filename().string(), options_.extensions))
          files.push_back(entry.path().string());
      std::sort(files.begin(), files.end());
      for (std::string& f : files) items_.push_back({std::make_shared<const std::string>(std::move(f)), nullptr, 0});
    } else if (has_extension(path, {".tar"})) {
      auto archive = TarArchive::open(path);
      std::vector<std::size_t> order;
      for (std::size_t m = 0; m < archive->members().size(); ++m)
        if (has_extension(archive->members()[m].name, options_.extensions)) order.push_back(m);
      std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return archive->members()[a].name < archive->members()[b].name;
      });
      for (std::size_t m : order)
        items_.push_back({std::make_shared<const std::string>(path + ":" + archive->members()[m].name), archive, m});
    } else {
      items_.push_back({std::make_shared<const std::string>(path), nullptr, 0});  // named: taken whatever its ending
    }
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
    return out;
  }
  std::string join_paths() const { return join(options_.paths); }

  ImageFilesOptions options_;
  std::vector<Item> items_;
  std::shared_ptr<const DatasetInfo> info_;
  std::size_t position_ = 0;
};

}  // namespace

PluginInfo image_files_source_plugin() {
  PluginInfo p;
  p.name = "image_files";
  p.summary = "Encoded images from files, folders and tar files, unlabelled, in the order given (for prediction)";
  p.description =
      "Emits every image under `paths` once, in the order given: a file as it is, a folder's files\n"
      "(recursively) and a tar's members sorted by name, keeping those with one of `extensions`.\n"
      "Samples carry no label (-1) and their path as key (\"archive.tar:member\" inside a tar). What\n"
      "`flowrun predict` reads its inputs with; a path that does not exist fails at start.\n"
      "\n"
      "  {\"id\": \"images\", \"plugin\": \"image_files\", \"params\": {\"paths\": [\"photos/\", \"cat.jpg\"]}}";
  p.role = Role::Source;
  p.outputs = {{"out", kEncodedSampleKind, "one encoded image per item, unlabelled, with its path"}};
  declare_options<ImageFilesOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<ImageFilesSource>(args); };
  return p;
}

}  // namespace flowrun
