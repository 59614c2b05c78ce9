// The tar reader against archives made by GNU tar itself (gnu and pax formats, long
// names), its errors on damaged files, and the dataset behaviour every source shares:
// labels, subsets, stratified split, per-epoch shuffle, rank shards.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "flowrun/errors.hpp"
#include "flowrun/pipeline.hpp"
#include "stages/messages/sample.hpp"
#include "stages/sources/dataset_source.hpp"
#include "stages/sources/tar_archive.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {
namespace fs = std::filesystem;

// A folder in ImageFolder layout with `per_class` small files per class.
void make_tree(const std::string& root, const std::vector<std::string>& classes, int per_class) {
  for (const std::string& c : classes) {
    fs::create_directories(root + "/" + c);
    for (int i = 0; i < per_class; ++i) {
      std::ofstream(root + "/" + c + "/" + std::to_string(1000 + i) + ".jpg") << c << " file " << i;
    }
  }
}

std::string make_tar(const TempDir& dir, const std::string& format) {
  const std::string tar = dir.path() + "/data-" + format + ".tar";
  const std::string cmd = "cd " + dir.path() + " && tar --format=" + format + " -cf " + tar + " train 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return tar;
}

TEST(TarArchive, ReadsGnuAndPaxArchivesIncludingLongNames) {
  TempDir dir;
  make_tree(dir.path() + "/train", {"cat", "dog"}, 3);
  const std::string long_dir = dir.path() + "/train/dog/" + std::string(120, 'x');
  fs::create_directories(long_dir);
  std::ofstream(long_dir + "/deep.jpg") << "deep file";
  for (const std::string format : {"gnu", "pax", "ustar"}) {
    if (format == "ustar") fs::remove_all(long_dir);  // plain ustar cannot hold this name
    const auto tar = TarArchive::open(make_tar(dir, format));
    std::map<std::string, std::string> contents;
    for (const auto& m : tar->members()) {
      contents[m.name] = std::string(reinterpret_cast<const char*>(tar->data(m)), m.size);
    }
    EXPECT_EQ(contents["train/cat/1001.jpg"], "cat file 1") << format;
    EXPECT_EQ(contents["train/dog/1002.jpg"], "dog file 2") << format;
    if (format != "ustar") {
      EXPECT_EQ(contents["train/dog/" + std::string(120, 'x') + "/deep.jpg"], "deep file") << format;
    }
  }
}

TEST(TarArchive, DamagedFilesAreRefusedWithTheirPath) {
  TempDir dir;
  make_tree(dir.path() + "/train", {"cat"}, 2);
  const std::string tar = make_tar(dir, "gnu");
  std::string bytes = read_file(tar);
  const std::string corrupt = dir.write("corrupt.tar", bytes.substr(0, 100) + "Z" + bytes.substr(101));
  try {
    TarArchive::open(corrupt);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt header at byte 0"), std::string::npos) << e.what();
  }
  // Cut inside the data of the last file.
  const std::size_t last_member_end = 512 * 5 + 10;
  const std::string truncated = dir.write("truncated.tar", bytes.substr(0, last_member_end - 20));
  EXPECT_THROW(TarArchive::open(truncated), std::runtime_error);
  EXPECT_THROW(TarArchive::open(dir.path() + "/missing.tar"), std::runtime_error);
}

std::unique_ptr<Pipeline> source_only(const std::string& params_json, const std::vector<std::string>& sets = {}) {
  return std::make_unique<Pipeline>(describe(R"({"name": "s", "nodes": [
      {"id": "src", "plugin": "tar", "params": )" + params_json + R"(},
      {"id": "sink", "plugin": "collect"}], "edges": ["src -> sink"]})", sets));
}

DatasetSource& source_of(Pipeline& p) { return dynamic_cast<DatasetSource&>(*p.stage("src")); }

class Sources : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tree(dir_.path() + "/train", {"bird", "cat", "dog"}, 20);
    tar_ = make_tar(dir_, "gnu");
  }
  std::string params(const std::string& extra = "") const {
    return R"({"paths": [")" + tar_ + R"("], "prefix": "train/")" + extra + "}";
  }
  TempDir dir_;
  std::string tar_;
};

TEST_F(Sources, LabelsFollowSortedClassNamesAndSubsetsRenumber) {
  auto p = source_only(params());
  source_of(*p).start();
  EXPECT_EQ(source_of(*p).classes(), (std::vector<std::string>{"bird", "cat", "dog"}));
  EXPECT_EQ(source_of(*p).records().size(), 60u);
  for (const auto& r : source_of(*p).records()) {
    EXPECT_EQ(r.key.substr(6, r.class_name.size()), r.class_name);
    EXPECT_EQ(source_of(*p).classes()[static_cast<std::size_t>(r.label)], r.class_name);
  }
  auto subset = source_only(params(R"(, "classes": ["dog", "bird"], "per_class_limit": 5)"));
  source_of(*subset).start();
  EXPECT_EQ(source_of(*subset).classes(), (std::vector<std::string>{"bird", "dog"}));
  EXPECT_EQ(source_of(*subset).records().size(), 10u);
  auto wrong = source_only(params(R"(, "classes": ["dgo"])"));
  try {
    source_of(*wrong).start();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'dog'"), std::string::npos) << e.what();
  }
}

TEST_F(Sources, StratifiedSplitIsDisjointCompleteAndIndependentOfTheRunSeed) {
  std::set<std::string> train, val;
  std::map<std::string, int> val_per_class;
  for (const char* side : {"train", "val"}) {
    auto p = source_only(params(std::string(R"(, "split": ")") + side + R"(", "val_fraction": 0.25)"), {"seed=1"});
    source_of(*p).start();
    for (const auto& r : source_of(*p).records()) {
      (std::string(side) == "train" ? train : val).insert(r.key);
      if (std::string(side) == "val") ++val_per_class[r.class_name];
    }
  }
  EXPECT_EQ(train.size() + val.size(), 60u);
  for (const auto& key : val) EXPECT_EQ(train.count(key), 0u) << key;
  for (const auto& [c, n] : val_per_class) EXPECT_EQ(n, 5) << c;  // 25% of 20, in every class
  auto other_seed = source_only(params(R"(, "split": "val", "val_fraction": 0.25)"), {"seed=999"});
  source_of(*other_seed).start();
  std::set<std::string> val_again;
  for (const auto& r : source_of(*other_seed).records()) val_again.insert(r.key);
  EXPECT_EQ(val, val_again);
}

TEST_F(Sources, EpochsAreShuffledDifferentlyAndRanksGetDisjointEqualShares) {
  auto p = source_only(params());
  source_of(*p).start();
  const auto e0 = source_of(*p).epoch_order(0), e1 = source_of(*p).epoch_order(1);
  EXPECT_NE(e0, e1);
  EXPECT_EQ(std::set<std::uint64_t>(e0.begin(), e0.end()).size(), 60u);
  std::set<std::uint64_t> seen;
  for (int rank = 0; rank < 4; ++rank) {
    auto r = source_only(params(R"(, "world_size": 4, "rank": )" + std::to_string(rank)));
    source_of(*r).start();
    const auto mine = source_of(*r).epoch_order(3);
    EXPECT_EQ(mine.size(), 15u);
    for (auto i : mine) EXPECT_TRUE(seen.insert(i).second) << "index " << i << " on two ranks";
  }
  EXPECT_EQ(seen.size(), 60u);
  // A rank outside the world is refused by validation, at its JSON location.
  try {
    source_only(params(R"(, "world_size": 2, "rank": 2)"));
    FAIL() << "rank 2 of 2 validated";
  } catch (const DescriptionError& e) {
    EXPECT_NE(std::string(e.what()).find("/nodes/0/params/rank: rank 2 is not below world_size 2"), std::string::npos)
        << e.what();
  }
}

TEST_F(Sources, EvaluationSharesTakeEverySampleOnceAndTrainingSharesAreEven) {
  // 60 samples over 7 ranks: even shares are 8 each (4 left out of a shuffled epoch);
  // complete shares (the default without shuffling) are 9 or 8 and take all 60.
  std::set<std::uint64_t> even_seen, complete_seen;
  for (int rank = 0; rank < 7; ++rank) {
    auto even = source_only(params(R"(, "world_size": 7, "rank": )" + std::to_string(rank)));
    source_of(*even).start();
    const auto e = source_of(*even).epoch_order(0);
    EXPECT_EQ(e.size(), 8u);
    for (auto i : e) EXPECT_TRUE(even_seen.insert(i).second) << "index " << i << " on two ranks";
    auto complete = source_only(params(R"(, "shuffle": false, "world_size": 7, "rank": )" + std::to_string(rank)));
    source_of(*complete).start();
    const auto c = source_of(*complete).epoch_order(0);
    EXPECT_EQ(c.size(), rank < 4 ? 9u : 8u) << "rank " << rank;
    for (auto i : c) EXPECT_TRUE(complete_seen.insert(i).second) << "index " << i << " on two ranks";
    auto forced = source_only(params(R"(, "shuffle": false, "shard": "even", "world_size": 7, "rank": )" + std::to_string(rank)));
    source_of(*forced).start();
    EXPECT_EQ(source_of(*forced).epoch_order(0).size(), 8u);
  }
  EXPECT_EQ(even_seen.size(), 56u);
  EXPECT_EQ(complete_seen.size(), 60u);
}

TEST_F(Sources, ImageFolderListsTheSameSamplesAsTheTar) {
  auto folder = std::make_unique<Pipeline>(describe(R"({"name": "f", "nodes": [
      {"id": "src", "plugin": "image_folder", "params": {"root": ")" + dir_.path() + R"(/train"}},
      {"id": "sink", "plugin": "collect"}], "edges": ["src -> sink"]})"));
  auto tar = source_only(params());
  source_of(*folder).start();
  source_of(*tar).start();
  ASSERT_EQ(source_of(*folder).records().size(), source_of(*tar).records().size());
  for (std::size_t i = 0; i < source_of(*tar).records().size(); ++i) {
    EXPECT_EQ(source_of(*folder).records()[i].label, source_of(*tar).records()[i].label);
  }
  const RunReport report = folder->run();
  EXPECT_EQ(report.nodes[0].items, 60u);
}

TEST(DatasetSource, WarnsWhenClassesAreImbalanced) {
  TempDir dir;
  for (const char* folder : {"cat", "dog", "eel"}) std::filesystem::create_directories(dir.path() + "/" + folder);
  for (int i = 0; i < 7; ++i) dir.write("cat/" + std::to_string(i) + ".jpg", "x");
  dir.write("dog/0.jpg", "x");
  dir.write("dog/1.jpg", "x");  // eel/ stays empty: image_folder's classes are the folders with images
  const std::string pipeline = dir.write("p.json", R"({"name": "balance", "nodes": [
      {"id": "src", "plugin": "image_folder", "params": {"root": ")" + dir.path() + R"("}},
      {"id": "sink", "plugin": "discard"}], "edges": ["src -> sink"]})");
  auto r = run_flowrun({pipeline, "--run-dir", dir.path() + "/run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("classes are imbalanced: cat has 7 samples, dog 2 (3.5x)"), std::string::npos) << r.err;
  // Balanced: no warning.
  dir.write("dog/2.jpg", "x");
  dir.write("dog/3.jpg", "x");
  dir.write("dog/4.jpg", "x");
  r = run_flowrun({pipeline, "--run-dir", dir.path() + "/run"});
  EXPECT_EQ(r.err.find("imbalanced"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace flowrun::testing
