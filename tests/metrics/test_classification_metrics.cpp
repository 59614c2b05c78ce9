// Classification metrics on a worked example (values by hand, as scikit-learn's
// precision_recall_fscore_support and top_k_accuracy_score define them).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lib/metrics/classification_metrics.hpp"

namespace flowrun {
namespace {

// labels 0 0 1 1 2 2, top-1 predictions 0 1 1 1 0 2; the second-ranked class follows.
ClassificationMetrics example() {
  ClassificationMetrics m(3, 2);
  const std::int64_t labels[] = {0, 0, 1, 1, 2, 2};
  const std::int64_t ranked[][2] = {{0, 1}, {1, 0}, {1, 2}, {1, 0}, {0, 1}, {2, 0}};
  for (int i = 0; i < 6; ++i) m.add(labels[i], ranked[i], 2, 0.5 * i);
  return m;
}

TEST(ClassificationMetrics, WorkedExample) {
  const ClassificationMetrics m = example();
  EXPECT_EQ(m.count(), 6);
  EXPECT_DOUBLE_EQ(m.accuracy(), 4.0 / 6);
  EXPECT_DOUBLE_EQ(m.top_k_accuracy(), 5.0 / 6) << "sample 4 (label 2, ranked 0, 1) misses the top 2";
  EXPECT_DOUBLE_EQ(m.loss(), 0.5 * 15 / 6);
  const auto s = m.per_class();
  EXPECT_DOUBLE_EQ(s[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(s[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(s[1].precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s[1].recall, 1.0);
  EXPECT_DOUBLE_EQ(s[1].f1, 0.8);
  EXPECT_DOUBLE_EQ(s[2].precision, 1.0);
  EXPECT_DOUBLE_EQ(s[2].recall, 0.5);
  EXPECT_NEAR(m.macro_f1(), (0.5 + 0.8 + 2.0 / 3) / 3, 1e-12);
  EXPECT_EQ(m.confusion()[2][0], 1);
  EXPECT_EQ(s[2].support, 2);
}

TEST(ClassificationMetrics, MergeEqualsOnePass) {
  ClassificationMetrics a = example(), b = example(), both(3, 2);
  both.merge(a);
  both.merge(b);
  EXPECT_EQ(both.count(), 12);
  EXPECT_DOUBLE_EQ(both.macro_f1(), a.macro_f1());
  EXPECT_EQ(both.confusion()[1][1], 4);
}

// What data-parallel ranks add up: the flat totals of two shares, summed element-wise
// and set back, give the metrics of both shares in one (as merge does), and a list of
// another shape is refused.
TEST(ClassificationMetrics, SummedTotalsOfSharesEqualTheWhole) {
  ClassificationMetrics a = example(), b(3, 2), merged = example();
  const std::int64_t ranked[][2] = {{2, 1}, {0, 2}};
  b.add(2, ranked[0], 2, 1.5);
  b.add(1, ranked[1], 2, 0.25);
  merged.merge(b);
  std::vector<double> sums = a.sums();
  const std::vector<double> other = b.sums();
  ASSERT_EQ(sums.size(), 4u + 9u);
  for (std::size_t i = 0; i < sums.size(); ++i) sums[i] += other[i];
  ClassificationMetrics whole(3, 2);
  whole.set_sums(sums);
  EXPECT_EQ(whole.count(), merged.count());
  EXPECT_DOUBLE_EQ(whole.accuracy(), merged.accuracy());
  EXPECT_DOUBLE_EQ(whole.top_k_accuracy(), merged.top_k_accuracy());
  EXPECT_DOUBLE_EQ(whole.loss(), merged.loss());
  EXPECT_DOUBLE_EQ(whole.macro_f1(), merged.macro_f1());
  EXPECT_EQ(whole.confusion(), merged.confusion());
  EXPECT_THROW(whole.set_sums({1, 2, 3}), std::invalid_argument);
}

TEST(ClassificationMetrics, ClassesAbsentFromASplitDoNotDragMacroF1Down) {
  ClassificationMetrics m(4, 1);
  const std::int64_t zero = 0, one = 1;
  m.add(0, &zero, 1, 0);
  m.add(1, &one, 1, 0);
  EXPECT_DOUBLE_EQ(m.macro_f1(), 1.0);
  EXPECT_THROW(m.add(4, &zero, 1, 0), std::out_of_range);
}

TEST(ClassificationMetrics, JsonAndTableNameTheClasses) {
  const ClassificationMetrics m = example();
  const auto j = nlohmann::json::parse(m.to_json({"cat", "dog", "ship"}));
  EXPECT_EQ(j["per_class"][2]["class"], "ship");
  EXPECT_DOUBLE_EQ(j["top2_accuracy"].get<double>(), 5.0 / 6);
  EXPECT_EQ(j["confusion"][0][1], 1);
  const auto lines = m.table({"cat", "dog", "ship"});
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[2].rfind("dog", 0), 0u);
  EXPECT_NE(lines.back().find("macro F1 0.6556"), std::string::npos) << lines.back();
}

}  // namespace
}  // namespace flowrun
