// The statistics of an ablation: mean and sample standard deviation over seeds, and
// 95% Student-t confidence intervals, of a mean over seeds and of a paired difference
// (two variants run with the same seeds). Torch-free, no I/O.
#pragma once

#include <cstddef>
#include <vector>

namespace flowrun::ablation {

// Mean and sample standard deviation (n - 1; 0 for one value); NaNs are left out.
struct Stat {
  double mean, std;
  std::size_t n = 0;
  Stat();
};
Stat stat_of(const std::vector<double>& values);

// The quantile of Student's t distribution with `df` degrees of freedom (df > 0,
// 0 < p < 1): t_{0.975, 2} = 4.303. Computed from the regularized incomplete beta
// function, not a table, so any df works.
double student_t_quantile(double p, double df);

// A two-sided 95% confidence interval of a mean: mean -+ t_{0.975, n-1} s / sqrt(n).
// lo and hi are NaN when n < 2 (one seed says nothing about the spread).
struct Interval {
  double mean, lo, hi;
  std::size_t n = 0;
  Interval();
  bool defined() const;   // n >= 2
  bool excludes_zero() const;  // defined, and 0 lies outside [lo, hi]: the difference is resolved
};
Interval mean_interval(const std::vector<double>& values);

// The paired difference a[i] - b[i] over the indices where both are finite (one pair
// per seed): its mean and 95% interval. Pairing removes what a seed does to both runs
// alike (initialisation, data order, augmentation draws) from the comparison.
Interval paired_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace flowrun::ablation
