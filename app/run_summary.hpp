// What a finished run says about itself: the per-node table printed at the end, the
// train stage's data stall with a verdict, and run.json in the run folder (read by
// scripts and by `flowrun ablate`).
#pragma once

#include <string>
#include <vector>

#include "flowrun/description.hpp"
#include "flowrun/pipeline.hpp"

namespace flowrun::cli {

// The share of a train stage's active time (first call to last) it spent waiting for
// its next batch (not busy itself, nor lending its model to evaluate nodes that are
// busy with it), judged as TensorFlow's input-pipeline analyser does: under 5% not
// input-bound, 5-20% moderately, 20% or more highly; with the loader node that was busy
// longest, named for the user to act on.
struct DataStall {
  std::string node;
  double share = 0;
  std::string verdict;     // "not input-bound" | "moderately input-bound" | "highly input-bound"
  std::string bottleneck;  // "decode (jpeg_decode) is 62% of the loader's busy time"; "" when no loader node
};
std::vector<DataStall> data_stalls(const Description& description, const RunReport& report);

void print_report(const Description& description, const RunReport& report);

// run.json: reason, seconds, threads, per node items / busy_s / active_s, data stalls;
// or, without a report (the run threw), reason "failed" and the error.
void write_run_summary(const std::string& folder, const std::string& pipeline, const Description& description,
                       const RunReport* report, const std::string& error, int exit_code);

}  // namespace flowrun::cli
