// Payload kind "model": the train stage's model, lent to evaluate nodes at an
// evaluation point (output "model") and once after training (output "final_model").
//
// A lease, not a copy: the snapshot holds the live modules, and the train stage does
// not step again until every snapshot it lent is released (its last holder drops it),
// so the weights cannot change under an evaluation and no memory is spent on a copy
// (a ViT-B/16 copy would be 346 MB, twice that with EMA). The evaluate nodes answer on
// the snapshot before they let it go; the release wakes the train stage
// (RunControl::wake), which takes the answers: the evaluation's numbers for its
// metrics stream, early stopping, diagnostics and checkpoints.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "flowrun/message.hpp"
#include "lib/model/inference.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/model_snapshot_kind.hpp"

namespace flowrun {

// What one evaluate node found.
struct EvaluationAnswer {
  std::string node;                         // the evaluate node
  std::vector<std::string> sources;         // the sources its batches came from
  std::map<std::string, double> headline;   // loss, accuracy, top5_accuracy, macro_f1, samples (ema_*)
  std::shared_ptr<Evaluation> evaluation;   // the whole record
};

// Shared by a snapshot and the train stage that lent it: outlives the snapshot.
class EvaluationAnswers {
 public:
  void add(EvaluationAnswer answer);
  // The answers, ordered by node id (not by arrival: thread timing must not order them).
  std::vector<EvaluationAnswer> take();
  bool released() const { return released_.load(); }
  void mark_released() { released_ = true; }

 private:
  std::mutex mutex_;
  std::vector<EvaluationAnswer> answers_;
  std::atomic<bool> released_{false};
};

struct ModelSnapshot : Payload {
  ModelSnapshot(std::shared_ptr<EvaluationAnswers> answers, std::function<void()> on_release);
  ~ModelSnapshot() override;  // marks the answers released, then calls on_release
  ModelSnapshot(const ModelSnapshot&) = delete;
  ModelSnapshot& operator=(const ModelSnapshot&) = delete;

  // The lent model: run it only with predict_logits()/evaluate_batch() (eval mode, no
  // gradients), never step it.
  mutable Vit model{nullptr};
  mutable Vit ema{nullptr};  // null without EMA
  InputTransform input;
  Precision precision = Precision::Fp32;
  std::vector<std::string> classes;
  int num_classes = 0;

  bool final = false;             // after training (a test split), or at an evaluation point
  std::uint64_t epoch = 0;        // the training epoch it was taken in
  std::uint64_t step = 0;         // optimizer steps taken
  bool after_epoch_end = true;    // at an epoch's end, or at a step inside it
  std::uint64_t number = 0;       // evaluation points before this one (final: 0)
  std::uint64_t planned = 0;      // evaluation points the run will have (0 = unknown)
  std::string planned_why;        // how the train stage counts them, for messages

  void answer(EvaluationAnswer a) const { answers_->add(std::move(a)); }
  // "after epoch 3" or "at step 500, epoch 2" or "after training".
  std::string point() const;
  std::string describe() const override;

 private:
  std::shared_ptr<EvaluationAnswers> answers_;
  std::function<void()> on_release_;
};

}  // namespace flowrun
