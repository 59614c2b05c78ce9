// Per-item random streams. Every random decision a stage makes for an item comes
// from a generator keyed on (run seed, node, epoch, item index), never from shared
// state, so the same seed gives the same items whatever the thread count or order
// of execution. The generator (SplitMix64 key mixing, xoshiro256** stream) and the
// distributions are written out here rather than taken from <random>, whose
// distributions differ between standard libraries.
#pragma once

#include <cstdint>
#include <string>

namespace flowrun {

class Rng {
 public:
  explicit Rng(std::uint64_t key);

  std::uint64_t next_u64();
  double uniform();                              // [0, 1)
  double uniform(double lo, double hi);          // [lo, hi)
  std::uint64_t below(std::uint64_t n);          // [0, n), unbiased; n > 0
  bool bernoulli(double p);
  double normal();                               // mean 0, std 1 (Box-Muller)
  double gamma(double shape);                    // Gamma(shape, 1), shape > 0 (Marsaglia-Tsang)
  double beta(double a, double b);               // Beta(a, b), a, b > 0 (two gammas)

 private:
  std::uint64_t s_[4];
};

// Mixes values into one 64-bit key (SplitMix64 finalizer chained).
std::uint64_t mix_key(std::uint64_t a, std::uint64_t b);
std::uint64_t hash_name(const std::string& name);  // FNV-1a, stable across runs and builds

// The random streams one node hands out: one per (epoch, item index), plus one per
// epoch for decisions that concern the whole epoch (a shuffle).
class RandomStreams {
 public:
  RandomStreams() = default;
  RandomStreams(std::uint64_t seed, const std::string& node_id)
      : key_(mix_key(seed, hash_name(node_id))) {}

  Rng for_item(std::uint64_t epoch, std::uint64_t index) const {
    return Rng(mix_key(mix_key(key_, epoch), index));
  }
  Rng for_epoch(std::uint64_t epoch) const { return Rng(mix_key(mix_key(key_, epoch), ~0ULL)); }

 private:
  std::uint64_t key_ = 0;
};

}  // namespace flowrun
