#include "data_parallel.hpp"

#include <functional>
#include <stdexcept>

#include "cli.hpp"
#include "device.hpp"
#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"

namespace flowrun::cli {

ProcessPlacement read_placement() {
  try {
    return placement_from_environment();
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("data-parallel launch variables: ") + e.what());
  }
}

std::shared_ptr<DataParallelGroup> join_data_parallel(const ProcessPlacement& placement, Description& description,
                                                      std::chrono::seconds timeout) {
  if (!placement.data_parallel()) return nullptr;
  if (description.device.rfind("cuda", 0) == 0) {
    // One process per GPU: LOCAL_RANK picks it, whatever index the description named.
    const std::string mine = "cuda:" + std::to_string(placement.local_rank);
    try {
      description.device = resolve_device(mine);
    } catch (const std::exception& e) {
      throw DescriptionError(description.source, "/device",
                             std::string("data-parallel on CUDA puts local rank N on cuda:N: ") + e.what());
    }
  }
  log::info("data-parallel: ", placement.describe(), ", from ", placement.launcher, "'s variables; connecting (",
            timeout.count(), " s timeout)");
  auto group = DataParallelGroup::connect(placement, description.device, timeout);
  set_current_data_parallel_group(group);
  // Every rank must run the same description: a different --set on one rank would
  // train a different model or shard differently, and fail later in obscure ways.
  const std::string digest = std::to_string(std::hash<std::string>{}(description.resolved_json));
  const std::vector<std::string> digests = group->all_gather_text("description", digest);
  std::string differ;
  for (std::size_t r = 0; r < digests.size(); ++r)
    if (digests[r] != digests[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw std::runtime_error("data-parallel: rank(s) " + differ +
                             " run a different description than rank 0 (another file or other --set values); every "
                             "rank must run the same one");
  log::info("data-parallel: ", group->size(), " ranks joined on ", group->backend(), ", device ", description.device,
            "; collectives fail after ", timeout.count(), " s without an answer");
  return group;
}

std::string rank0_text(DataParallelGroup& group, const std::string& key, const std::string& mine) {
  return group.all_gather_text(key, mine).front();
}

}  // namespace flowrun::cli
