// `flowrun run` as one rank of a data-parallel job (started by torchrun, SLURM or
// flowrun launch): joins the process group before the graph is built and agrees with
// the other ranks on what they run.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "flowrun/description.hpp"
#include "lib/distributed/process_group.hpp"

namespace flowrun::cli {

// This process's place; a malformed launcher variable is a usage error (exit 2).
ProcessPlacement read_placement();

// Connects to the other ranks (Gloo on the CPU; NCCL on CUDA, on cuda:LOCAL_RANK,
// which becomes the description's device), makes the group the process's current one,
// and checks that every rank runs the same description (after --set). Returns null
// for a single process.
std::shared_ptr<DataParallelGroup> join_data_parallel(const ProcessPlacement& placement, Description& description,
                                                      std::chrono::seconds timeout);

// Every rank takes rank 0's answer (the run folder rank 0 named with its clock).
std::string rank0_text(DataParallelGroup& group, const std::string& key, const std::string& mine);

}  // namespace flowrun::cli
