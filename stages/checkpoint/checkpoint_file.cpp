#include "stages/checkpoint/checkpoint_file.hpp"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <cmath>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "flowrun/atomic_file.hpp"
#include "stages/checkpoint/hdf5_file.hpp"

namespace flowrun {
namespace {

const char* const kTensorGroups[] = {"model", "ema", "optimizer", "grad", "rng", "label_check"};

Hdf5Type hdf5_type_of(const at::Tensor& t, const std::string& name) {
  switch (t.scalar_type()) {
    case at::kFloat: return Hdf5Type::F32;
    case at::kDouble: return Hdf5Type::F64;
    case at::kLong: return Hdf5Type::I64;
    case at::kByte: return Hdf5Type::U8;
    default:
      throw std::runtime_error("cannot checkpoint tensor '" + name + "' of type " + std::string(t.dtype().name()) +
                               " (float32, float64, int64 and uint8 are stored)");
  }
}

at::ScalarType scalar_type_of(Hdf5Type type) {
  switch (type) {
    case Hdf5Type::F32: return at::kFloat;
    case Hdf5Type::F64: return at::kDouble;
    case Hdf5Type::I64: return at::kLong;
    case Hdf5Type::U8: return at::kByte;
  }
  return at::kFloat;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// One column per value name; a record without that value gets NaN.
void write_metrics(Hdf5File& f, const std::vector<Metrics>& history) {
  std::map<std::string, std::vector<std::pair<std::int64_t, const Metrics*>>> by_scope;  // (position, record)
  for (std::size_t i = 0; i < history.size(); ++i)
    by_scope[history[i].scope].emplace_back(static_cast<std::int64_t>(i), &history[i]);
  for (const auto& [scope, indexed] : by_scope) {
    std::set<std::string> names;
    std::vector<std::int64_t> steps, epochs, order;
    std::vector<const Metrics*> rows;
    std::string notes;
    for (const auto& [position, m] : indexed) {
      for (const auto& [name, value] : m->values) names.insert(name);
      steps.push_back(static_cast<std::int64_t>(m->step));
      epochs.push_back(static_cast<std::int64_t>(m->epoch));
      order.push_back(position);
      rows.push_back(m);
      if (scope == "note") notes += m->note + "\n";
    }
    const std::vector<std::int64_t> shape = {static_cast<std::int64_t>(rows.size())};
    const std::string group = "metrics/" + scope + "/";
    f.write(group + "step", Hdf5Type::I64, shape, steps.data());
    f.write(group + "epoch", Hdf5Type::I64, shape, epochs.data());
    f.write(group + "order", Hdf5Type::I64, shape, order.data());  // position in the run's sequence of records
    if (scope == "note") f.set_attribute("metrics/note", "text", notes);  // one line per note
    for (const std::string& name : names) {
      std::vector<double> column;
      for (const Metrics* m : rows) {
        const auto it = m->values.find(name);
        column.push_back(it == m->values.end() ? std::numeric_limits<double>::quiet_NaN() : it->second);
      }
      f.write(group + name, Hdf5Type::F64, shape, column.data());
    }
  }
}

std::vector<Metrics> read_metrics(const Hdf5File& f) {
  std::vector<Metrics> history;
  std::map<std::string, std::vector<std::string>> columns;  // scope -> value names
  for (const std::string& path : f.datasets("metrics")) {
    const auto slash = path.find('/');
    if (slash == std::string::npos) continue;
    const std::string scope = path.substr(0, slash), name = path.substr(slash + 1);
    if (name != "step" && name != "epoch" && name != "order") columns[scope].push_back(name);
    else columns[scope];
  }
  std::vector<std::int64_t> orders;
  for (const auto& [scope, names] : columns) {
    const auto steps = f.read_i64("metrics/" + scope + "/step");
    const auto epochs = f.read_i64("metrics/" + scope + "/epoch");
    const bool ordered = f.exists("metrics/" + scope + "/order");
    const auto order = ordered ? f.read_i64("metrics/" + scope + "/order") : steps;
    std::vector<std::string> notes;
    if (scope == "note" && f.has_attribute("metrics/note", "text")) {
      std::string text = f.string_attribute("metrics/note", "text");
      for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = text.find('\n', at);
        notes.push_back(text.substr(at, end - at));
        at = end == std::string::npos ? text.size() : end + 1;
      }
    }
    std::vector<Metrics> rows(steps.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      rows[i].scope = scope;
      rows[i].step = static_cast<std::uint64_t>(steps[i]);
      rows[i].epoch = static_cast<std::uint64_t>(epochs[i]);
      if (i < notes.size()) rows[i].note = notes[i];
      orders.push_back(order[i]);
    }
    for (const std::string& name : names) {
      const auto column = f.read_f64("metrics/" + scope + "/" + name);
      for (std::size_t i = 0; i < rows.size() && i < column.size(); ++i)
        if (!std::isnan(column[i])) rows[i].values[name] = column[i];
    }
    history.insert(history.end(), rows.begin(), rows.end());
  }
  // Scopes were read one after the other: restore the order they happened in.
  std::vector<std::size_t> by_order(history.size());
  for (std::size_t i = 0; i < by_order.size(); ++i) by_order[i] = i;
  std::stable_sort(by_order.begin(), by_order.end(), [&](std::size_t a, std::size_t b) { return orders[a] < orders[b]; });
  std::vector<Metrics> sorted;
  for (std::size_t i : by_order) sorted.push_back(std::move(history[i]));
  return sorted;
}

std::map<std::string, StreamPosition> read_positions(const Hdf5File& f) {
  std::map<std::string, StreamPosition> positions;
  for (const std::string& source : f.datasets("data")) {
    const auto pos = f.read_i64("data/" + source);
    if (pos.size() != 2) throw std::runtime_error(f.path() + ": data/" + source + " should hold [epoch, position]");
    positions[source] = {static_cast<std::uint64_t>(pos[0]), static_cast<std::uint64_t>(pos[1])};
  }
  return positions;
}

}  // namespace

void write_checkpoint(const TrainState& state, const std::string& path, const std::string& pipeline_json) {
  AtomicFile out(path);
  {
    Hdf5File f = Hdf5File::create(out.temporary_path());
    f.set_attribute("", "format", std::string(kCheckpointFormat));
    f.set_attribute("", "format_version", kCheckpointFormatVersion);
    f.set_attribute("", "reason", state.reason);
    f.set_attribute("", "node", state.node);
    f.set_attribute("", "step", static_cast<std::int64_t>(state.step));
    f.set_attribute("", "epoch", static_cast<std::int64_t>(state.epoch));
    f.set_attribute("", "created", utc_now());
    f.set_attribute("", "model_config", state.model_config);
    f.set_attribute("", "classes", nlohmann::json(state.classes).dump());
    f.set_attribute("", "pipeline", pipeline_json);
    for (const auto& [name, tensor] : state.tensors) {
      // HDF5 reads host memory: a tensor still on a device is brought over first.
      const at::Tensor t = tensor.is_cpu() ? tensor.contiguous() : tensor.cpu().contiguous();
      std::vector<std::int64_t> shape(t.sizes().begin(), t.sizes().end());
      f.write(name, hdf5_type_of(t, name), shape, t.data_ptr());
    }
    for (const auto& [name, value] : state.counters) f.write("state/" + name, Hdf5Type::I64, {}, &value);
    for (const auto& [name, value] : state.values) f.write("state/" + name, Hdf5Type::F64, {}, &value);
    for (const auto& [source, at] : state.positions) {
      const std::int64_t pos[2] = {static_cast<std::int64_t>(at.epoch), static_cast<std::int64_t>(at.position)};
      f.write("data/" + source, Hdf5Type::I64, {2}, pos);
    }
    write_metrics(f, state.history);
    f.close();
  }
  out.commit();
}

CheckpointFile read_checkpoint(const std::string& path) {
  const Hdf5File f = Hdf5File::open_read(path);
  if (!f.has_attribute("", "format") || f.string_attribute("", "format") != kCheckpointFormat)
    throw std::runtime_error(path + " is an HDF5 file but not a flowrun checkpoint (no format attribute '" +
                             kCheckpointFormat + "')");
  const std::int64_t version = f.int_attribute("", "format_version");
  if (version > kCheckpointFormatVersion) {
    throw std::runtime_error(path + " is checkpoint format version " + std::to_string(version) + "; this flowrun reads up to " +
                             std::to_string(kCheckpointFormatVersion));
  }
  CheckpointFile out;
  TrainState& s = out.state;
  s.reason = f.string_attribute("", "reason");
  s.node = f.string_attribute("", "node");
  s.step = static_cast<std::uint64_t>(f.int_attribute("", "step"));
  s.epoch = static_cast<std::uint64_t>(f.int_attribute("", "epoch"));
  s.model_config = f.string_attribute("", "model_config");
  s.classes = nlohmann::json::parse(f.string_attribute("", "classes")).get<std::vector<std::string>>();
  out.pipeline_json = f.string_attribute("", "pipeline");
  out.created = f.string_attribute("", "created");
  for (const char* group : kTensorGroups) {
    for (const std::string& name : f.datasets(group)) {
      const std::string full = std::string(group) + "/" + name;
      const Hdf5DatasetInfo info = f.info(full);
      at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(scalar_type_of(info.type)));
      f.read(full, info.type, t.data_ptr());
      s.tensors.emplace_back(full, std::move(t));
    }
  }
  for (const std::string& name : f.datasets("state")) {
    const Hdf5DatasetInfo info = f.info("state/" + name);
    if (info.type == Hdf5Type::F64 || info.type == Hdf5Type::F32) s.values[name] = f.read_f64("state/" + name).at(0);
    else s.counters[name] = f.read_i64("state/" + name).at(0);
  }
  s.positions = read_positions(f);
  s.history = read_metrics(f);
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> read_checkpoint_group(const std::string& path, const std::string& group) {
  const Hdf5File f = Hdf5File::open_read(path);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const std::string& name : f.datasets(group)) {
    const std::string full = group + "/" + name;
    const Hdf5DatasetInfo info = f.info(full);
    at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(scalar_type_of(info.type)));
    f.read(full, info.type, t.data_ptr());
    out.emplace_back(name, std::move(t));
  }
  return out;
}

std::map<std::string, StreamPosition> read_checkpoint_positions(const std::string& path) {
  return read_positions(Hdf5File::open_read(path));
}

void resume_from_checkpoint(const std::string& path, RunOptions& options) {
  CheckpointFile file = read_checkpoint(path);
  options.resume_from = path;
  options.start_positions = file.state.positions;
  const std::string node = file.state.node;
  options.saved_states[node] = std::make_shared<TrainState>(std::move(file.state));
}

}  // namespace flowrun
