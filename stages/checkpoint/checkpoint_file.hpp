// Checkpoint files: a TrainState in HDF5, laid out so that h5py users find things by
// their obvious names:
//
//   /                     attributes: format, format_version, reason, node, step, epoch,
//                         created (UTC), model_config (JSON), classes (JSON), pipeline
//                         (the resolved description, JSON)
//   /model/<name>         one dataset per parameter or buffer (float32), timm names
//   /ema/<name>           the EMA weights, when the run has them
//   /optimizer/<name>/*   exp_avg, exp_avg_sq, step (AdamW) or momentum_buffer (SGD)
//   /grad/<name>          accumulated gradients (only when taken mid-accumulation)
//   /rng/torch_cpu        generator states (uint8)
//   /label_check/*        the label-error check's per-sample counts (index, seen/wrong, ...)
//   /state/...            counters (int64) and values (float64) of trainer and stage
//   /data/<source>        int64 [epoch, position]: where each source's stream resumes
//   /metrics/<scope>/*    the metrics so far: step, epoch and one float64 column per value
//
// Writes are atomic (temporary file in the same folder, fsync, rename): a crash at
// any moment leaves the previous file intact.
#pragma once

#include <string>

#include "flowrun/pipeline.hpp"
#include "stages/messages/train_state.hpp"

namespace flowrun {

constexpr const char* kCheckpointFormat = "flowrun.checkpoint";
constexpr std::int64_t kCheckpointFormatVersion = 1;

void write_checkpoint(const TrainState& state, const std::string& path, const std::string& pipeline_json);

struct CheckpointFile {
  TrainState state;
  std::string pipeline_json;  // the resolved description it was saved from
  std::string created;
};
// Throws naming the file when it is not a flowrun checkpoint or is damaged.
CheckpointFile read_checkpoint(const std::string& path);

// The tensors of one group ("model", "ema") by their name inside it, reading nothing
// else: what evaluating or predicting with a checkpoint needs (not the optimizer's
// moments, twice the model's size with AdamW).
std::vector<std::pair<std::string, at::Tensor>> read_checkpoint_group(const std::string& path, const std::string& group);

// Only the data positions (what the runtime needs to seek the sources), without
// reading any tensor.
std::map<std::string, StreamPosition> read_checkpoint_positions(const std::string& path);

// A run resuming from `path`: reads it once and sets what the runtime hands on, the
// sources' positions and the saved state under the node that saved it.
void resume_from_checkpoint(const std::string& path, RunOptions& options);

}  // namespace flowrun
