// Generic stages that know nothing about images: a numbered test source, a
// pass-through with fault-injection knobs, and a recording sink. They make the
// runtime's behaviour (ordering, backpressure, failures, signals) easy to test
// and to demonstrate, the way GStreamer's fakesrc/identity/fakesink do.
#pragma once

#include "flowrun/plugin.hpp"

namespace flowrun {

PluginInfo counter_source_plugin();
PluginInfo identity_plugin();
PluginInfo collect_plugin();
PluginInfo discard_plugin();

}  // namespace flowrun
