// Resolves the description's device ("auto", "cpu", "cuda", "cuda:N") with LibTorch,
// and says what it finds for --version. Kept in its own file so
// <torch/...> is compiled once.
#pragma once

#include <string>

namespace flowrun {

// "auto" -> "cuda" when a CUDA device is usable, else "cpu". Throws
// std::runtime_error when CUDA is asked for and none is there (or N is too large).
std::string resolve_device(const std::string& requested);

// For --version: the LibTorch this binary was built against and the CUDA devices it
// can use here ("LibTorch 2.11.0; CUDA devices usable here: 1"): the first thing to
// look at when a GPU machine's run falls back to, or refuses, the CPU.
std::string runtime_summary();

// --warn-host-syncs: c10's sync debug mode at its warning level (as Python's
// torch.cuda.set_sync_debug_mode("warn")), process-wide: every wait for a GPU that goes
// through c10's checked calls (item(), a copy to the host, a stream sync) prints a c10
// warning on stderr. Event waits and device-wide syncs are not among them. False where
// this LibTorch has no CUDA.
bool warn_on_host_syncs();

}  // namespace flowrun
