// Names of the runtime's small enums, and the lease helper; kept together because
// each is a few lines.
#include <stdexcept>
#include <memory>
#include <vector>

#include "flowrun/message.hpp"
#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

const char* signal_name(Signal signal) {
  switch (signal) {
    case Signal::Data: return "data";
    case Signal::Skip: return "skip";
    case Signal::EpochEnd: return "epoch_end";
    case Signal::End: return "end";
  }
  return "?";
}

const char* role_name(Role role) {
  switch (role) {
    case Role::Source: return "source";
    case Role::Map: return "map";
    case Role::Ordered: return "ordered";
  }
  return "?";
}

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::Finished: return "finished";
    case StopReason::Interrupted: return "interrupted";
    case StopReason::Failed: return "failed";
  }
  return "?";
}

void SourceStage::seek(const StreamPosition& at) {
  throw std::runtime_error("this source cannot continue a stream at epoch " + std::to_string(at.epoch) + ", position " +
                           std::to_string(at.position) + " (it does not support resuming)");
}

bool kind_accepts(const std::string& accepted, const std::string& kind) {
  if (accepted == kAnyKind || accepted == kind) return true;
  std::size_t start = 0;
  while (start <= accepted.size()) {
    std::size_t bar = accepted.find('|', start);
    if (bar == std::string::npos) bar = accepted.size();
    if (accepted.compare(start, bar - start, kind) == 0) return true;
    start = bar + 1;
  }
  return false;
}

Lease combine_leases(std::vector<Lease> leases) {
  return std::make_shared<const std::vector<Lease>>(std::move(leases));
}

}  // namespace flowrun
