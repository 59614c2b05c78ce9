// Keeps the ranks of a data-parallel job in step: each collective (the gradients'
// all-reduce) needs every rank, so no rank may take a step the others will not. Before
// each micro-batch every rank says whether it goes on; when one stops (asked to by a
// signal, out of data, or failed), all stop at that same point and know who and why.
#pragma once

#include <memory>
#include <string>

namespace flowrun {

class DataParallelGroup;

class StepAgreement {
 public:
  enum class Why { None = 0, OutOfData = 1, AskedToStop = 2 };

  explicit StepAgreement(std::shared_ptr<DataParallelGroup> group);

  // Before a micro-batch: true when every rank takes it. False when some rank stops
  // (this one included, when a stop was asked of it); no call after that is collective.
  bool go_on();
  // This rank has no more micro-batches: tells the ranks still asking (once; no-op
  // after go_on() returned false).
  void leave();

  bool stopped() const { return stopped_; }
  Why why() const { return why_; }
  std::string explanation() const;  // "rank 1 was asked to stop (SIGINT/SIGTERM)"

 private:
  Why round(Why mine);

  std::shared_ptr<DataParallelGroup> group_;
  bool stopped_ = false;
  Why why_ = Why::None;
  int who_ = -1;
};

}  // namespace flowrun
