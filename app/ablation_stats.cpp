// Student's t from the regularized incomplete beta function, evaluated by its continued
// fraction (modified Lentz). Boost.Math has it, but 138 MB of headers for one function
// is more than this needs; the unit tests hold it to the printed t table.
#include "ablation_stats.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace flowrun::ablation {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The continued fraction of I_x(a, b), which converges fast for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double f = d;
  for (int m = 1; m <= 500; ++m) {
    for (int half = 0; half < 2; ++half) {
      const double numerator = half == 0 ? m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
                                         : -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
      d = 1.0 + numerator * d;
      if (std::abs(d) < kTiny) d = kTiny;
      c = 1.0 + numerator / c;
      if (std::abs(c) < kTiny) c = kTiny;
      d = 1.0 / d;
      f *= c * d;
      if (half == 1 && std::abs(c * d - 1.0) < kEps) return f;
    }
  }
  return f;
}

// I_x(a, b), given x and y = 1 - x separately: near x = 1 the caller's y keeps the
// digits that 1 - x would lose.
double regularized_beta(double a, double b, double x, double y) {
  if (x <= 0) return 0;
  if (y <= 0) return 1;
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log(y);
  if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_fraction(a, b, x) / a;
  return 1.0 - std::exp(log_front) * beta_fraction(b, a, y) / b;
}

double student_t_cdf(double t, double df) {
  const double tt = t * t;
  const double tail = 0.5 * regularized_beta(df / 2, 0.5, df / (df + tt), tt / (df + tt));
  return t >= 0 ? 1.0 - tail : tail;
}

}  // namespace

Stat::Stat() : mean(kNaN), std(kNaN) {}

Stat stat_of(const std::vector<double>& values) {
  Stat s;
  double sum = 0;
  for (double v : values)
    if (std::isfinite(v)) sum += v, ++s.n;
  if (s.n == 0) return s;
  s.mean = sum / static_cast<double>(s.n);
  double squares = 0;
  for (double v : values)
    if (std::isfinite(v)) squares += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(squares / static_cast<double>(s.n - 1)) : 0.0;
  return s;
}

double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) throw std::invalid_argument("student_t_quantile: needs 0 < p < 1 and df > 0");
  if (p == 0.5) return 0;
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, df) < p) hi *= 2;  // df 1, p 0.9995: 636.6
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Interval::Interval() : mean(kNaN), lo(kNaN), hi(kNaN) {}

bool Interval::defined() const { return n >= 2 && std::isfinite(lo) && std::isfinite(hi); }

bool Interval::excludes_zero() const { return defined() && (lo > 0 || hi < 0); }

Interval mean_interval(const std::vector<double>& values) {
  const Stat s = stat_of(values);
  Interval i;
  i.n = s.n;
  i.mean = s.mean;
  if (s.n < 2) return i;
  const double half = student_t_quantile(0.975, static_cast<double>(s.n - 1)) * s.std / std::sqrt(static_cast<double>(s.n));
  i.lo = s.mean - half;
  i.hi = s.mean + half;
  return i;
}

Interval paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> differences;
  for (std::size_t k = 0; k < a.size() && k < b.size(); ++k)
    if (std::isfinite(a[k]) && std::isfinite(b[k])) differences.push_back(a[k] - b[k]);
  return mean_interval(differences);
}

}  // namespace flowrun::ablation
