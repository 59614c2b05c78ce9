#include "stages/sources/dataset_source.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>

#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "lib/distributed/process_group.hpp"

namespace flowrun {
namespace {

constexpr std::int64_t kNoLimit = 0;     // per_class_limit
constexpr std::size_t kClassesListed = 20;  // more classes than this: the log gives the spread

const char* split_name(DatasetSplit split) {
  return split == DatasetSplit::All ? "all" : split == DatasetSplit::Train ? "train" : "val";
}

void shuffle_in_place(std::vector<std::uint64_t>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);  // Fisher-Yates
}

}  // namespace

void check_dataset_node(const CheckedNode& node, std::vector<CheckFinding>& findings) {
  const std::int64_t rank = node.params->integer("rank"), world_size = node.params->integer("world_size");
  if (rank >= world_size)
    findings.push_back({"rank", "rank " + std::to_string(rank) + " is not below world_size " + std::to_string(world_size)});
}

DatasetSource::DatasetSource(const StageArgs& args, const DatasetOptions& o)
    : SourceStage(args),
      epochs_(static_cast<std::uint64_t>(o.epochs)),
      shuffle_(o.shuffle),
      split_(o.split),
      val_fraction_(o.val_fraction),
      split_seed_(static_cast<std::uint64_t>(o.split_seed)),
      class_subset_(o.classes),
      per_class_limit_(o.per_class_limit),
      rank_(static_cast<std::uint64_t>(o.rank)),
      world_size_(static_cast<std::uint64_t>(o.world_size)),
      even_shares_(o.shard == ShardMode::Even || (o.shard == ShardMode::Auto && o.shuffle)) {
  // In a data-parallel job the process group says which share is this rank's, unless
  // the description set it (then it must agree with the job).
  if (const auto group = current_data_parallel_group()) {
    const auto rank = static_cast<std::uint64_t>(group->rank()), size = static_cast<std::uint64_t>(group->size());
    if (world_size_ == 1) {
      rank_ = rank;
      world_size_ = size;
    } else if (world_size_ != size || rank_ != rank) {
      throw std::invalid_argument("rank " + std::to_string(rank_) + " of world_size " + std::to_string(world_size_) +
                                  " is set, but this process is rank " + std::to_string(rank) + " of " +
                                  std::to_string(size) + " in its data-parallel job: leave rank and world_size "
                                  "unset there (the job fills them in)");
    }
  }
  if (rank_ >= world_size_) {  // check_dataset_node says so before the run; a stage built by hand still must not
    throw std::invalid_argument("rank " + std::to_string(rank_) + " is not below world_size " +
                                std::to_string(world_size_));
  }
}

// The class-balance check fine-tuning checklists ask for: a class with no samples, or
// one with far fewer than the largest, skews both training and plain accuracy.
void DatasetSource::warn_on_imbalance(const std::map<std::int64_t, std::size_t>& counts) const {
  std::string empty;
  std::size_t shown = 0;
  for (std::size_t label = 0; label < classes_.size(); ++label) {
    if (counts.count(static_cast<std::int64_t>(label))) continue;
    if (shown++ < 5) empty += (empty.empty() ? "" : ", ") + classes_[label];
  }
  if (shown > 0 && class_subset_.empty()) {
    log::warn("source '", node_id(), "': ", shown, " of ", classes_.size(), " classes have no samples (", empty,
              shown > 5 ? ", ..." : "", "): the model still has an output for each");
  }
  if (counts.size() < 2) return;
  auto [lo, hi] = std::minmax_element(counts.begin(), counts.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
  const double ratio = static_cast<double>(hi->second) / static_cast<double>(lo->second);
  if (ratio >= kImbalanceRatio) {
    log::warn("source '", node_id(), "': classes are imbalanced: ", classes_[static_cast<std::size_t>(hi->first)], " has ",
              hi->second, " samples, ", classes_[static_cast<std::size_t>(lo->first)], " ", lo->second, " (", log::fixed(ratio, 1),
              "x); watch per-class recall and macro F1 rather than accuracy alone");
  }
}

void DatasetSource::start() {
  select(list_records());
  std::map<std::int64_t, std::size_t> counts;
  for (const DatasetRecord& r : records_) ++counts[r.label];
  std::string table;
  if (counts.size() <= kClassesListed) {
    for (const auto& [label, count] : counts)
      table += (table.empty() ? "" : ", ") + classes_[static_cast<std::size_t>(label)] + " " + std::to_string(count);
  } else {  // hundreds of classes: the spread, not the list
    auto [lo, hi] = std::minmax_element(counts.begin(), counts.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; });
    table = lo->second == hi->second ? std::to_string(lo->second) + " per class"
                                     : "per class " + std::to_string(lo->second) + " (" +
                                           classes_[static_cast<std::size_t>(lo->first)] + ") to " +
                                           std::to_string(hi->second) + " (" +
                                           classes_[static_cast<std::size_t>(hi->first)] + ")";
  }
  log::info("source '", node_id(), "': ", records_.size(), " samples in ", classes_.size(), " classes (split ", split_name(split_),
            world_size_ > 1 ? ", rank " + std::to_string(rank_) + "/" + std::to_string(world_size_) : "",
            "): ", table);
  if (records_.empty()) throw std::runtime_error("no samples left to emit (check the path, prefix, classes and split)");
  warn_on_imbalance(counts);
  auto info = std::make_shared<DatasetInfo>();
  info->source = node_id();
  info->classes = classes_;
  info->epoch_size = epoch_order(0).size();
  info->epochs = epochs_;
  info_ = std::move(info);
}

SampleInfo DatasetSource::sample_info(const DatasetRecord& record) const {
  SampleInfo info(record.label, record.shared_key);
  info.dataset = info_;
  info.position = reading_position_;
  return info;
}

std::vector<std::string> DatasetSource::list_classes(const std::vector<DatasetRecord>& records) const {
  std::set<std::string> names;
  const std::string* previous = nullptr;  // records come sorted by key, so grouped by class
  for (const DatasetRecord& r : records) {
    if (!previous || r.class_name != *previous) names.insert(r.class_name);
    previous = &r.class_name;
  }
  return std::vector<std::string>(names.begin(), names.end());
}

void DatasetSource::select(std::vector<DatasetRecord> all) {
  const std::vector<std::string> listed = list_classes(all);
  std::set<std::string> names(listed.begin(), listed.end());
  if (!class_subset_.empty()) {
    for (const std::string& wanted : class_subset_) {
      if (!names.count(wanted)) {
        throw std::invalid_argument("class '" + wanted + "' is not in the dataset" +
                                    did_you_mean(wanted, std::vector<std::string>(names.begin(), names.end())));
      }
    }
    names = std::set<std::string>(class_subset_.begin(), class_subset_.end());
  }
  classes_.assign(names.begin(), names.end());
  std::map<std::string, std::int64_t> label_of;
  for (std::size_t i = 0; i < classes_.size(); ++i) label_of[classes_[i]] = static_cast<std::int64_t>(i);

  // Group by class (records arrive sorted by key), apply the limit, then split.
  std::vector<std::vector<DatasetRecord>> by_class(classes_.size());
  // Records come grouped by class: one look-up per class, not per record. (A copy of the
  // name, not a pointer: the record is moved into its bucket.)
  std::optional<std::string> last_class;
  std::int64_t last_label = -1;
  for (DatasetRecord& r : all) {
    if (!last_class || r.class_name != *last_class) {
      auto it = label_of.find(r.class_name);
      last_label = it == label_of.end() ? -1 : it->second;
      last_class = r.class_name;
    }
    if (last_label < 0) continue;
    r.label = last_label;
    auto& bucket = by_class[static_cast<std::size_t>(r.label)];
    if (per_class_limit_ != kNoLimit && static_cast<std::int64_t>(bucket.size()) >= per_class_limit_) continue;
    r.shared_key = std::make_shared<const std::string>(r.key);
    bucket.push_back(std::move(r));
  }
  records_.clear();
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    auto& bucket = by_class[c];
    if (split_ == DatasetSplit::All) {
      for (auto& r : bucket) records_.push_back(std::move(r));
      continue;
    }
    // Stratified: the same share of every class, chosen by split_seed alone.
    std::vector<std::uint64_t> positions(bucket.size());
    std::iota(positions.begin(), positions.end(), 0);
    Rng rng(mix_key(mix_key(split_seed_, hash_name("split")), c));
    shuffle_in_place(positions, rng);
    const auto val_count = static_cast<std::size_t>(std::llround(val_fraction_ * static_cast<double>(bucket.size())));
    std::vector<bool> in_val(bucket.size(), false);
    for (std::size_t k = 0; k < val_count; ++k) in_val[positions[k]] = true;
    for (std::size_t k = 0; k < bucket.size(); ++k)
      if (in_val[k] == (split_ == DatasetSplit::Val)) records_.push_back(std::move(bucket[k]));
  }
}

std::vector<std::uint64_t> DatasetSource::epoch_order(std::uint64_t epoch) const {
  std::vector<std::uint64_t> order(records_.size());
  std::iota(order.begin(), order.end(), 0);
  if (shuffle_) {
    Rng rng = epoch_rng(epoch);
    shuffle_in_place(order, rng);
  }
  if (world_size_ == 1) return order;
  // Rank r takes positions r, r + W, r + 2W...: even shares stop where the shortest
  // one does (every rank runs the same number of steps, which training needs; the
  // remainder of a shuffled epoch differs each epoch); complete shares take all.
  const std::size_t end = even_shares_ ? order.size() / world_size_ * world_size_ : order.size();
  std::vector<std::uint64_t> mine;
  mine.reserve(end / world_size_ + 1);
  for (std::size_t k = rank_; k < end; k += world_size_) mine.push_back(order[k]);
  return mine;
}

void DatasetSource::seek(const StreamPosition& at) {
  if (at.epoch > epochs_ || (at.epoch == epochs_ && at.position > 0)) {
    throw std::runtime_error("position epoch " + std::to_string(at.epoch) + " item " + std::to_string(at.position) +
                             " is past the end of this source's " + std::to_string(epochs_) + " epoch(s)");
  }
  epoch_ = at.epoch;
  position_ = 0;
  order_.clear();
  if (epoch_ == epochs_) return;
  order_ = epoch_order(epoch_);
  if (at.position > order_.size()) {
    throw std::runtime_error("position " + std::to_string(at.position) + " is past the end of epoch " +
                             std::to_string(at.epoch) + " (" + std::to_string(order_.size()) +
                             " items): the source has other data or settings than when the checkpoint was saved");
  }
  position_ = at.position;
}

bool DatasetSource::next(SourceItem& item) {
  if (epoch_ == epochs_) return false;
  if (position_ == 0 && order_.empty()) order_ = epoch_order(epoch_);
  if (position_ == order_.size()) {
    item.signal = Signal::EpochEnd;
    item.epoch = epoch_++;
    position_ = 0;
    order_.clear();
    return true;
  }
  reading_position_ = position_;
  const std::uint64_t index = order_[position_++];
  item.signal = Signal::Data;
  item.epoch = epoch_;
  item.index = index;
  item.payload = read(records_[index]);
  return true;
}

}  // namespace flowrun
