// Checkpoints: the stage that writes the train stage's snapshots to HDF5.
#pragma once

#include <string>

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo checkpoint_plugin();

// The folder checkpoints go to when the checkpoint stage's folder is "": the run
// folder's checkpoints/ (the same rule `flowrun --resume auto` looks by).
std::string default_checkpoint_folder(const std::string& run_folder);

// The newest checkpoint (highest step) among ckpt-step*.h5 in `folder`; "" when none.
std::string newest_checkpoint(const std::string& folder);

}  // namespace flowrun
