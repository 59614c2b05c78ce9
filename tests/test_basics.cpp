// Small building blocks: random streams, schema constraint texts, atomic files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <vector>

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

// Kolmogorov-Smirnov distance of `draws` (sorted in place) from a CDF.
static double ks_distance(std::vector<double>& draws, double (*cdf)(double)) {
  std::sort(draws.begin(), draws.end());
  double d = 0;
  const double n = static_cast<double>(draws.size());
  for (std::size_t i = 0; i < draws.size(); ++i) {
    const double f = cdf(draws[i]);
    d = std::max({d, std::abs(f - i / n), std::abs((i + 1) / n - f)});
  }
  return d;
}

// Beta(a, a) is Mixup's and CutMix's lambda. Where the CDF has a closed form the whole
// distribution is tested (KS at the 0.1% level: 1.95 / sqrt(n)): a = 1 is uniform,
// a = 0.5 the arcsine law; elsewhere the first two moments (mean 1/2, variance
// 1 / (4 (2a + 1))), and Gamma's mean and variance (both the shape).
TEST(Rng, BetaAndGammaFollowTheirLaws) {
  Rng rng(7);
  const int n = 50000;
  const double ks_limit = 1.95 / std::sqrt(static_cast<double>(n));
  std::vector<double> uniform_draws, arcsine_draws;
  for (int i = 0; i < n; ++i) {
    uniform_draws.push_back(rng.beta(1.0, 1.0));
    arcsine_draws.push_back(rng.beta(0.5, 0.5));
  }
  EXPECT_LT(ks_distance(uniform_draws, [](double x) { return x; }), ks_limit);
  EXPECT_LT(ks_distance(arcsine_draws, [](double x) { return 2.0 / M_PI * std::asin(std::sqrt(x)); }), ks_limit);
  for (double a : {0.1, 0.2, 0.8, 2.0, 5.0}) {
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      const double x = rng.beta(a, a);
      ASSERT_GE(x, 0.0);
      ASSERT_LE(x, 1.0);
      sum += x;
      sum_sq += x * x;
    }
    const double mean = sum / n, var = sum_sq / n - mean * mean, expected_var = 1.0 / (4.0 * (2.0 * a + 1.0));
    EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(expected_var / n)) << "a = " << a;
    EXPECT_NEAR(var, expected_var, 0.03 * expected_var + 0.002) << "a = " << a;
  }
  for (double shape : {0.3, 1.0, 4.5}) {
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      const double g = rng.gamma(shape);
      sum += g;
      sum_sq += g * g;
    }
    const double mean = sum / n, var = sum_sq / n - mean * mean;
    EXPECT_NEAR(mean, shape, 4 * std::sqrt(shape / n)) << "shape " << shape;
    EXPECT_NEAR(var, shape, 0.06 * shape) << "shape " << shape;
  }
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
