// Small building blocks: random streams, schema constraint texts, atomic files.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "flowrun/atomic_file.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/rng.hpp"
#include "flowrun/schema.hpp"
#include "support/test_util.hpp"

namespace flowrun::testing {
namespace {

TEST(Rng, StreamsDependOnSeedNodeEpochAndIndexOnly) {
  const RandomStreams a(42, "augment");
  const RandomStreams b(42, "augment");
  EXPECT_EQ(a.for_item(1, 7).next_u64(), b.for_item(1, 7).next_u64());
  std::set<std::uint64_t> firsts = {a.for_item(1, 7).next_u64(), a.for_item(1, 8).next_u64(),
                                    a.for_item(2, 7).next_u64(), RandomStreams(43, "augment").for_item(1, 7).next_u64(),
                                    RandomStreams(42, "crop").for_item(1, 7).next_u64(), a.for_epoch(1).next_u64()};
  EXPECT_EQ(firsts.size(), 6u) << "streams of different keys collided";
}

TEST(Rng, DistributionsLookRight) {
  Rng rng(123);
  const int n = 200000;
  double sum = 0, sum_sq = 0;
  std::vector<int> buckets(10, 0);
  int heads = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ++buckets[rng.below(10)];
    heads += rng.bernoulli(0.25);
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
  }
  for (int count : buckets) EXPECT_NEAR(count, n / 10, n / 10 * 0.05);
  EXPECT_NEAR(heads / static_cast<double>(n), 0.25, 0.01);
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sum_sq / n, 1.0, 0.02);
}

TEST(Schema, ConstraintTextsAndDefaults) {
  Schema s;
  s.number("p", 0.5, "probability").range(0, 1);
  s.integer("n", 1, "count").min(1);
  s.choice("mode", "a", {"a", "b"}, "mode");
  s.number_list("mean", {0.1, 0.2, 0.3}, "means").length(3).range(0, 1);
  s.required("root", ParamType::String, "folder");
  EXPECT_EQ(s.find("p")->describe_constraint(), "[0, 1]");
  EXPECT_EQ(s.find("n")->describe_constraint(), ">= 1");
  EXPECT_EQ(s.find("mode")->describe_constraint(), "a | b");
  EXPECT_EQ(s.find("mean")->describe_constraint(), "3 values, each [0, 1]");
  EXPECT_TRUE(s.find("root")->required());
  EXPECT_EQ(format_param_value(*s.find("mean")->default_value()), "[0.1, 0.2, 0.3]");
  EXPECT_THROW(s.integer("n", 2, "again"), std::logic_error);
  EXPECT_THROW(s.integer("undocumented", 2, ""), std::logic_error);
}

TEST(Schema, ParamsRefuseUndeclaredOrMistypedReads) {
  Params p({{"n", ParamValue(std::int64_t{3})}});
  EXPECT_EQ(p.integer("n"), 3);
  EXPECT_THROW(p.number("n"), std::logic_error);
  EXPECT_THROW(p.integer("m"), std::logic_error);
}

TEST(Errors, SuggestionsFindNearNames) {
  EXPECT_EQ(did_you_mean("randaugmnt", {"randaugment", "random_crop", "resize"}), " (did you mean 'randaugment'?)");
  EXPECT_EQ(did_you_mean("zzzzzz", {"randaugment"}), "");
}

TEST(AtomicFile, CommitReplacesAndAbandonLeavesTheOldFile) {
  TempDir dir;
  const std::string path = dir.path() + "/metrics.json";
  {
    AtomicFile f(path);
    f.write("first");
    f.commit();
  }
  EXPECT_EQ(read_file(path), "first");
  {
    AtomicFile f(path);
    f.write("second, never committed");
  }
  EXPECT_EQ(read_file(path), "first");
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u) << "the abandoned temporary file was left behind";
}

}  // namespace
}  // namespace flowrun::testing
