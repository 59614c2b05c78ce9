#include "stages/builtin.hpp"

#include "flowrun/registry.hpp"
#include "stages/core/core_stages.hpp"

namespace flowrun {

void register_builtin_stages(Registry& registry) {
  registry.add(counter_source_plugin());
  registry.add(identity_plugin());
  registry.add(collect_plugin());
}

}  // namespace flowrun
