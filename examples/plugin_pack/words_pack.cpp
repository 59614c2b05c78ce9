// An example plugin pack, built out of tree: a source that reads words from a text
// file and a per-item stage that upper-cases them. It defines its own payload kind
// ("words/text"), so flowrun's kind check refuses to connect it to stages that
// expect something else. Run it with:
//
//   FLOWRUN_PLUGIN_PATH=build-example flowrun examples/plugin_pack/pipeline.json
#include <cctype>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowrun/options.hpp"
#include "flowrun/pack.hpp"
#include "flowrun/registry.hpp"

namespace {

using namespace flowrun;

constexpr const char* kTextKind = "words/text";

struct Text : Payload {
  explicit Text(std::string s) : text(std::move(s)) {}
  std::string describe() const override { return text; }
  std::string text;
};

// Its parameters, each declared once: the schema and the stage's values come from here.
struct WordsOptions {
  std::string path;
  template <typename D>
  static void declare(D& d) {
    d.required(&WordsOptions::path, "path", "text file to read (relative to the working folder)");
  }
};

// Emits the whitespace-separated words of a file, once per epoch.
class WordsSource : public SourceStage {
 public:
  explicit WordsSource(const StageArgs& args) : SourceStage(args), path_(read_options<WordsOptions>(args.params).path) {}

  void start() override {
    std::ifstream in(path_);
    if (!in) throw std::runtime_error("cannot open word file '" + path_ + "'");
    for (std::string w; in >> w;) words_.push_back(w);
  }

  bool next(SourceItem& item) override {
    if (position_ == words_.size()) return false;
    item.index = position_;
    item.payload = std::make_shared<Text>(words_[position_++]);
    return true;
  }

 private:
  std::string path_;
  std::vector<std::string> words_;
  std::size_t position_ = 0;
};

class Uppercase : public MapStage {
 public:
  using MapStage::MapStage;
  std::shared_ptr<const Payload> process(const Message& in) override {
    std::string s = in.as<Text>().text;
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return std::make_shared<Text>(std::move(s));
  }
};

void register_plugins(Registry& registry) {
  PluginInfo source;
  source.name = "words.source";
  source.summary = "Emits the words of a text file, one per item";
  source.role = Role::Source;
  source.outputs = {{"out", kTextKind, "one word per item"}};
  declare_options<WordsOptions>(source.params);
  source.create = [](const StageArgs& args) { return std::make_unique<WordsSource>(args); };
  registry.add(std::move(source));

  PluginInfo upper;
  upper.name = "words.uppercase";
  upper.summary = "Upper-cases each word";
  upper.role = Role::Map;
  upper.inputs = {{"in", kTextKind, "words"}};
  upper.outputs = {{"out", kTextKind, "the same words in capitals"}};
  upper.create = [](const StageArgs& args) { return std::make_unique<Uppercase>(args); };
  registry.add(std::move(upper));
}

}  // namespace

FLOWRUN_PLUGIN_PACK("words", "1.0", register_plugins)
