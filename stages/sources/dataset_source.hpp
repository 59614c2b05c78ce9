// What every dataset source shares: class labels from sorted class names, an
// optional class subset and per-class limit, a reproducible stratified
// train/validation split, a fresh shuffle per epoch from (seed, epoch), disjoint
// equal-size shards per rank for data-parallel training, and a per-class count
// report at start. A concrete source only lists its records and reads one.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "flowrun/options.hpp"
#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"
#include "stages/messages/sample.hpp"

namespace flowrun {

struct DatasetRecord {
  std::string key;              // path or member name: for messages and reports
  std::shared_ptr<const std::string> shared_key;  // the same, shared by every sample made from it
  std::string class_name;
  std::int64_t label = -1;      // set by DatasetSource from the sorted class names
  std::uint64_t locator = 0;    // source-specific: member number, record number...
};

enum class DatasetSplit { All, Train, Val };
// How an epoch is shared among data-parallel ranks.
enum class ShardMode { Auto, Even, Complete };

// The parameters every dataset source takes; each source's options derive from it
// and declare theirs, then these (declare_common).
struct DatasetOptions {
  std::int64_t epochs = 1;
  bool shuffle = true;
  DatasetSplit split = DatasetSplit::All;
  double val_fraction = 0.1;
  std::int64_t split_seed = 0;
  std::vector<std::string> classes;
  std::int64_t per_class_limit = 0;  // no limit
  std::int64_t rank = 0;
  std::int64_t world_size = 1;
  ShardMode shard = ShardMode::Auto;

  template <typename D>
  static void declare_common(D& d) {
    using O = DatasetOptions;
    d(&O::epochs, "epochs", "passes over the data").min(1);
    d(&O::shuffle, "shuffle", "new random order each epoch, drawn from (seed, node id, epoch)");
    d(&O::split, "split", "which part to emit: everything, or one side of a stratified train/validation split",
      Choices<DatasetSplit>{{"all", DatasetSplit::All}, {"train", DatasetSplit::Train}, {"val", DatasetSplit::Val}});
    d(&O::val_fraction, "val_fraction", "share of each class that goes to the 'val' side of the split").range(0, 0.99);
    d(&O::split_seed, "split_seed", "seed of the split alone, so it stays fixed when the run's seed changes").min(0);
    d(&O::classes, "classes", "class subset to keep, by name; [] = all (labels are renumbered in sorted order)");
    d(&O::per_class_limit, "per_class_limit",
      "keep at most this many samples per class (the first in sorted order); 0 = all")
        .min(0);
    d(&O::rank, "rank", "this process's rank in data-parallel training (filled in from the job when left unset)").min(0);
    d(&O::world_size, "world_size",
      "number of data-parallel processes: each rank gets a disjoint, equal-size share of every epoch (filled in "
      "from the job when left at 1: torchrun, SLURM, flowrun launch)")
        .min(1);
    d(&O::shard, "shard",
      "how ranks share an epoch: even = equal shares, the remainder left out (every rank takes the same number of "
      "steps: training); complete = every sample exactly once, shares differ by one (evaluation); auto = even when "
      "shuffled, complete otherwise",
      Choices<ShardMode>{{"auto", ShardMode::Auto}, {"even", ShardMode::Even}, {"complete", ShardMode::Complete}});
  }
};

// PluginInfo::check of every dataset source: rank below world_size.
void check_dataset_node(const CheckedNode& node, std::vector<CheckFinding>& findings);

class DatasetSource : public SourceStage {
 public:
  DatasetSource(const StageArgs& args, const DatasetOptions& options);

  void start() override;
  bool next(SourceItem& item) override;
  void seek(const StreamPosition& at) override;

  const std::vector<std::string>& classes() const { return classes_; }
  const std::vector<DatasetRecord>& records() const { return records_; }  // after subset/limit/split
  std::vector<std::uint64_t> epoch_order(std::uint64_t epoch) const;       // record positions this rank emits

 protected:
  // Every record of the dataset, in a deterministic order (sorted keys).
  virtual std::vector<DatasetRecord> list_records() = 0;
  // Every class of the dataset, even one with no records (labels must not shift when
  // a class is missing from a subset of files). Default: the classes the records name.
  virtual std::vector<std::string> list_classes(const std::vector<DatasetRecord>& records) const;
  // The payload for one record (EncodedSample or ImageSample), with sample_info(record).
  virtual std::shared_ptr<const Payload> read(const DatasetRecord& record) = 0;
  SampleInfo sample_info(const DatasetRecord& record) const;

 private:
  void select(std::vector<DatasetRecord> all);
  void warn_on_imbalance(const std::map<std::int64_t, std::size_t>& counts) const;
  static constexpr double kImbalanceRatio = 3.0;  // largest / smallest class above this: a warning

  std::uint64_t epochs_;
  bool shuffle_;
  DatasetSplit split_;
  double val_fraction_;
  std::uint64_t split_seed_;
  std::vector<std::string> class_subset_;
  std::int64_t per_class_limit_;
  std::uint64_t rank_;
  std::uint64_t world_size_;
  bool even_shares_;

  std::vector<std::string> classes_;
  std::shared_ptr<const DatasetInfo> info_;
  std::vector<DatasetRecord> records_;
  std::uint64_t epoch_ = 0;
  std::uint64_t position_ = 0;
  std::uint64_t reading_position_ = 0;  // of the record read() is reading
  std::vector<std::uint64_t> order_;
};

}  // namespace flowrun
