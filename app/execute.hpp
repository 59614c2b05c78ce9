// Running a checked description as `flowrun run` does: the run folder (flowrun.log,
// pipeline.json, run.json), Ctrl-C and SIGTERM, the end-of-run table. Shared by run,
// evaluate and predict.
#pragma once

#include <memory>
#include <string>

#include "data_parallel.hpp"
#include "flowrun/description.hpp"
#include "flowrun/pipeline.hpp"

namespace flowrun::cli {

struct RunSetup {
  std::string pipeline_label;                 // the file (or command) it came from, for run.json
  std::shared_ptr<DataParallelGroup> group;   // null: one process
  bool writer = true;                         // rank 0 (or one process): writes the run folder
  std::string profile;                        // --profile TRACE.json; "" = none
  std::string note;                           // a line to log before it starts; "" = none
  bool summary_table = true;                  // the per-node table at the end
};

// options.run_folder "" = no run folder (nothing written but what the stages write).
// Returns the exit code (0, 130 after SIGINT, 143 after SIGTERM); a failed stage throws.
int execute_pipeline(Description description, RunOptions options, const RunSetup& setup);

}  // namespace flowrun::cli
