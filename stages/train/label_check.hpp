// The label-error check over the training epochs. A training sample the model keeps
// assigning to another class, with high confidence, is a suspected label error.
// Counting every epoch (not only the last) keeps the suspects the model ends up
// memorizing; the train stage leaves out the first epoch (a random model's guesses
// say nothing). Decided in the last epoch, where every sample passes once more (and
// its thumbnail is taken). The counts travel in checkpoints.
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

class LabelCheck {
 public:
  // `confidence`: the mean softmax probability of the other class a suspect needs
  // (1 = the check is off); `top`: how many suspects to keep.
  LabelCheck(double confidence, std::size_t top) : confidence_(confidence), suspects_(top) {}

  bool enabled() const { return confidence_ < 1; }
  double confidence() const { return confidence_; }
  // The step's predictions for the samples of `batch`, in order.
  void observe(const Batch& batch, const std::vector<Trainer::Outcome>& outcomes, bool last_epoch);
  // The suspects, strongest first (wrong in most epochs, then most confident).
  std::vector<Misclassified> take_suspects() { return suspects_.take(); }

  void save(TrainState& state) const;  // as label_check/* columns
  void load(const TrainState& state);

 private:
  struct Watch {
    std::int32_t seen = 0, wrong = 0;
    std::int64_t predicted = -1;  // the latest other class
    double confidence_sum = 0;    // over the wrong sightings
  };
  double confidence_;
  WorstSamples suspects_;  // ordered by score: the share of wrong epochs + the mean confidence
  std::unordered_map<std::int64_t, Watch> watch_;  // by dataset index
};

}  // namespace flowrun
