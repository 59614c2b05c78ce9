// Where this process sits in a data-parallel job, as the launcher that started it
// says. torchrun's variables first (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE; `flowrun launch` sets the
// same), then SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE;
// MASTER_ADDR and MASTER_PORT still name the rendezvous). Neither: one process.
#pragma once

#include <functional>
#include <string>

namespace flowrun {

struct ProcessPlacement {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        // on this machine: picks the GPU (cuda:LOCAL_RANK)
  int local_world_size = 1;  // processes on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;   // torchrun's default
  // torchrun's elastic agent (or flowrun launch) already hosts the TCPStore at
  // MASTER_ADDR:MASTER_PORT, so every rank, rank 0 included, connects as a client.
  bool agent_store = false;
  std::string launcher;  // "torchrun" (its variables, whoever set them), "slurm", "" alone

  bool data_parallel() const { return world_size > 1; }
  std::string describe() const;  // "rank 1 of 2 (local 1 of 2), rendezvous 127.0.0.1:29500"
};

// Looks a variable up; nullptr when unset. Tests pass a map; the app std::getenv.
using EnvironmentLookup = std::function<const char*(const char*)>;

// Throws std::invalid_argument naming the variable for a value that is not a number in
// range, RANK without WORLD_SIZE (or the reverse), or a rank outside the world.
ProcessPlacement placement_from_environment(const EnvironmentLookup& lookup);
ProcessPlacement placement_from_environment();  // this process's environment

}  // namespace flowrun
