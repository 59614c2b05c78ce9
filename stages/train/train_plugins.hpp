// The train step as a pipeline stage.
#pragma once

#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

PluginInfo train_plugin();
// The stage behind it (train_stage.cpp): kept apart so that the declaration compiles
// without LibTorch's headers.
std::unique_ptr<Stage> make_train_stage(const StageArgs& args);

}  // namespace flowrun
