#include "lib/distributed/placement.hpp"

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace flowrun {
namespace {

class Reader {
 public:
  explicit Reader(const EnvironmentLookup& lookup) : lookup_(lookup) {}

  bool has(const char* name) const {
    const char* value = lookup_(name);
    return value != nullptr && *value != '\0';
  }

  std::string text(const char* name, const std::string& otherwise) const {
    return has(name) ? std::string(lookup_(name)) : otherwise;
  }

  int integer(const char* name, int otherwise, int min, int max = std::numeric_limits<int>::max()) const {
    if (!has(name)) return otherwise;
    const std::string value = lookup_(name);
    char* end = nullptr;
    errno = 0;
    const long parsed = std::strtol(value.c_str(), &end, 10);
    if (errno != 0 || end == value.c_str() || *end != '\0' || parsed < min || parsed > max)
      throw std::invalid_argument(std::string(name) + "='" + value + "': expected a whole number from " +
                                  std::to_string(min) + " to " + std::to_string(max));
    return static_cast<int>(parsed);
  }

 private:
  const EnvironmentLookup& lookup_;
};

void check_pair(const Reader& env, const char* a, const char* b) {
  if (env.has(a) != env.has(b))
    throw std::invalid_argument(std::string(env.has(a) ? a : b) + " is set but " + (env.has(a) ? b : a) +
                                " is not: a data-parallel process needs both");
}

// torchrun's TORCHELASTIC_USE_AGENT_STORE is the string "True" or "False".
bool truthy(const std::string& value) { return value == "True" || value == "true" || value == "1"; }

}  // namespace

std::string ProcessPlacement::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " +
         std::to_string(local_rank) + " of " + std::to_string(local_world_size) + "), rendezvous " + master_addr +
         ":" + std::to_string(master_port) + (agent_store ? " (hosted by the launcher)" : " (hosted by rank 0)");
}

ProcessPlacement placement_from_environment(const EnvironmentLookup& lookup) {
  const Reader env(lookup);
  ProcessPlacement p;
  check_pair(env, "RANK", "WORLD_SIZE");
  if (env.has("WORLD_SIZE")) {
    p.launcher = "torchrun";
    p.world_size = env.integer("WORLD_SIZE", 1, 1);
    p.rank = env.integer("RANK", 0, 0);
    p.local_world_size = env.integer("LOCAL_WORLD_SIZE", p.world_size, 1);
    p.local_rank = env.integer("LOCAL_RANK", p.rank % p.local_world_size, 0);
    p.agent_store = truthy(env.text("TORCHELASTIC_USE_AGENT_STORE", "False"));
  } else if (env.has("SLURM_NTASKS") || env.has("SLURM_PROCID")) {
    check_pair(env, "SLURM_PROCID", "SLURM_NTASKS");
    p.launcher = "slurm";
    p.world_size = env.integer("SLURM_NTASKS", 1, 1);
    p.rank = env.integer("SLURM_PROCID", 0, 0);
    // SLURM_NTASKS_PER_NODE can read "2(x3)" on uneven allocations: then only the local rank is known.
    p.local_world_size = env.integer("SLURM_NTASKS_PER_NODE", p.world_size, 1);
    p.local_rank = env.integer("SLURM_LOCALID", 0, 0);
    if (p.world_size > 1 && !env.has("MASTER_ADDR"))
      throw std::invalid_argument(
          "SLURM_NTASKS=" + std::to_string(p.world_size) +
          " but MASTER_ADDR is not set: export MASTER_ADDR as the first node's address (e.g. "
          "$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n1)) in the batch script");
  } else {
    return p;
  }
  p.master_addr = env.text("MASTER_ADDR", p.master_addr);
  p.master_port = env.integer("MASTER_PORT", p.master_port, 1, 65535);
  if (p.rank >= p.world_size)
    throw std::invalid_argument("rank " + std::to_string(p.rank) + " is outside a world of " +
                                std::to_string(p.world_size) + " processes (ranks 0 to " +
                                std::to_string(p.world_size - 1) + ")");
  if (p.local_rank >= p.local_world_size)
    throw std::invalid_argument("local rank " + std::to_string(p.local_rank) + " is outside the " +
                                std::to_string(p.local_world_size) + " processes on this machine");
  return p;
}

ProcessPlacement placement_from_environment() {
  return placement_from_environment([](const char* name) -> const char* { return std::getenv(name); });
}

}  // namespace flowrun
