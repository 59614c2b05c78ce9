// Where pretrained weights come from: `pretrained` is a local .safetensors file, a
// folder holding model.safetensors (what export writes, what save_pretrained
// writes), or a hub id such as google/vit-base-patch16-224-in21k.
//
// A hub id resolves to $FLOWRUN_CACHE/hub/<org>--<name>/model.safetensors
// (FLOWRUN_CACHE defaults to $XDG_CACHE_HOME/flowrun, else ~/.cache/flowrun). A file
// missing there is downloaded from $FLOWRUN_HUB_ENDPOINT (default
// https://huggingface.co; HF_ENDPOINT is honoured too) with progress and resume;
// its SHA-256 is checked when the hub's API publishes one (Git LFS files do).
// FLOWRUN_OFFLINE=1 (or HF_HUB_OFFLINE=1) never touches the network. When there is
// no cached copy and no download, the error says which file to put where.
#pragma once

#include <string>

namespace flowrun {

bool looks_like_hub_id(const std::string& spec);
std::string hub_cache_dir();  // FLOWRUN_CACHE resolution, without creating it
std::string hub_endpoint();

// The local .safetensors path for `spec`, downloading into the cache if needed.
// Throws std::runtime_error naming the spec, the path and what to do.
std::string resolve_pretrained(const std::string& spec, const std::string& expected_sha256 = "");

}  // namespace flowrun
