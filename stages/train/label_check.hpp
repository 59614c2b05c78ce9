// The label-error check over the training epochs. A training sample the model keeps
// assigning to another class, with high confidence, is a suspected label error.
// Counting every epoch (not only the last) keeps the suspects the model ends up
// memorizing; the train stage leaves out the first epoch (a random model's guesses
// say nothing). Decided in the last epoch, where every sample passes once more (and
// its thumbnail is taken). The counts travel in checkpoints.
//
// Data-parallel: a sample's sightings are spread over the ranks (each epoch's shares
// differ), so each rank counts its own, and the counts are summed over ranks where a
// whole history is needed: once before the last epoch's decisions (pool_history), in
// every checkpoint (save with a group: rank 0 keeps the sums on resume), and the
// suspects of all ranks at the end (pool_suspects).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "stages/messages/batch.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/train_state.hpp"
#include "stages/train/trainer.hpp"

namespace flowrun {

class DataParallelGroup;

class LabelCheck {
 public:
  // `confidence`: the mean softmax probability of the other class a suspect needs
  // (1 = the check is off); `top`: how many suspects to keep.
  LabelCheck(double confidence, std::size_t top) : confidence_(confidence), suspects_(top), top_(top) {}

  bool enabled() const { return confidence_ < 1; }
  double confidence() const { return confidence_; }
  // The step's predictions for the samples of `batch`, in order.
  void observe(const Batch& batch, const std::vector<Trainer::Outcome>& outcomes, bool last_epoch);
  // The suspects, strongest first (wrong in most epochs, then most confident).
  std::vector<Misclassified> take_suspects() { return suspects_.take(); }

  // Data-parallel (every rank at the same point): the counts so far summed over ranks,
  // which the last epoch's decisions then start from.
  void pool_history(DataParallelGroup& group);
  bool history_pooled() const { return pooled_ready_; }
  // Data-parallel, at the end: every rank's suspects, the strongest kept.
  void pool_suspects(DataParallelGroup& group);

  // As label_check/* columns; with `group` (every rank at the same point), the counts
  // summed over ranks. `keep_counts` false: start from none (ranks other than 0 on a
  // data-parallel resume, where rank 0 carries the job's sums).
  void save(TrainState& state, DataParallelGroup* group = nullptr) const;
  void load(const TrainState& state, bool keep_counts = true);

 private:
  struct Watch {
    std::int32_t seen = 0, wrong = 0;
    std::int64_t predicted = -1;  // the latest other class
    double confidence_sum = 0;    // over the wrong sightings
  };
  double confidence_;
  WorstSamples suspects_;  // ordered by score: the share of wrong epochs + the mean confidence
  // Every rank's counts summed (the whole history), as a dense table by dataset index.
  std::vector<Watch> summed(DataParallelGroup& group) const;

  std::unordered_map<std::int64_t, Watch> watch_;  // by dataset index: this rank's sightings
  std::vector<Watch> pooled_;                      // data-parallel: every rank's, before the last epoch
  bool pooled_ready_ = false;
  std::size_t top_;
};

}  // namespace flowrun
