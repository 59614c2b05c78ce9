// flowrun bench PIPELINE.json: the data path alone. Everything upstream of the train
// stage's training input runs as in the pipeline, into a discard sink that stops the
// run after N batches; it prints images/s and the per-node table. With --model it then
// times the train stage's own step on synthetic batches and says whether the pipeline
// is input-bound or compute-bound, and by how much.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/pipeline.hpp"
#include "run_summary.hpp"
#include "signals.hpp"
#include "stages/train/step_rate.hpp"

namespace flowrun::cli {
namespace {

struct BenchArgs {
  std::string pipeline;
  std::vector<std::string> overrides;
  std::int64_t batches = 200;
  bool model = false;
  int steps = 20;
  std::string profile;
};

// The description's training data path: the nodes upstream of `train`'s first input,
// ending in a discard sink that stops after `batches` items. Returns the node that fed
// the train stage (the sink's input) through `feeder`.
nlohmann::json data_path_of(const Description& d, int train, std::int64_t batches, int& feeder) {
  feeder = -1;
  for (const EdgeDesc& e : d.edges)
    if (e.to_node == train && e.to_port == 0) feeder = e.from_node;
  if (feeder < 0) throw UsageError("node '" + d.nodes[static_cast<std::size_t>(train)].id + "' has no training input");
  const std::vector<int> keep = d.upstream_of(feeder);
  const auto kept = [&](int i) { return std::find(keep.begin(), keep.end(), i) != keep.end(); };
  nlohmann::json doc = nlohmann::json::parse(d.resolved_json);
  nlohmann::json nodes = nlohmann::json::array();
  for (const nlohmann::json& n : doc["nodes"])
    if (kept(d.node_index(n.at("id").get<std::string>()))) nodes.push_back(n);
  nodes.push_back({{"id", "bench_sink"}, {"plugin", "discard"}, {"params", {{"stop_after", batches}}}});
  const auto port = [&](int node, int index, bool output) {
    const PluginInfo& p = *d.nodes[static_cast<std::size_t>(node)].plugin;
    return d.nodes[static_cast<std::size_t>(node)].id + "." + (output ? p.outputs : p.inputs)[static_cast<std::size_t>(index)].name;
  };
  nlohmann::json edges = nlohmann::json::array();
  for (const EdgeDesc& e : d.edges)
    if (kept(e.from_node) && kept(e.to_node)) edges.push_back(port(e.from_node, e.from_port, true) + " -> " + port(e.to_node, e.to_port, false));
  for (const EdgeDesc& e : d.edges)
    if (e.from_node == feeder && e.to_node == train) edges.push_back(port(feeder, e.from_port, true) + " -> bench_sink");
  doc["nodes"] = nodes;
  doc["edges"] = edges;
  doc["name"] = doc.value("name", "pipeline") + "_data_path";
  return doc;
}

int run_bench(Context& context, const BenchArgs& args) {
  const Description full = load_pipeline(context, args.pipeline, args.overrides);
  int train = -1;
  for (std::size_t i = 0; i < full.nodes.size(); ++i)
    if (full.nodes[i].plugin->name == "train") train = static_cast<int>(i);
  if (train < 0) throw UsageError(args.pipeline + " has no train node: run it as it is (flowrun run) for its figures");
  int feeder = -1;
  Description path = validate_description(data_path_of(full, train, args.batches, feeder), context.registry,
                                          context.loader, full.source + " (data path)", full.base_dir);
  path.device = full.device;
  // Images per batch: the batching node's batch_size (the items it took are the images).
  const NodeDesc* batching = nullptr;
  for (int i : full.upstream_of(feeder))
    if (full.nodes[static_cast<std::size_t>(i)].plugin->name == "batch") batching = &full.nodes[static_cast<std::size_t>(i)];
  log::info("bench: the data path of '", full.nodes[static_cast<std::size_t>(train)].id, "' (", path.nodes.size() - 1,
            " nodes up to '", full.nodes[static_cast<std::size_t>(feeder)].id, "'), ", args.batches, " batches, ",
            path.threads > 0 ? path.threads : 0, " runtime thread(s) (0 = all cores)");
  RunOptions options;
  options.profile_path = args.profile;
  Pipeline pipeline(std::move(path), options);
  SignalWatcher watcher([&](int) { pipeline.request_stop(); }, [&](int) { pipeline.cancel(); });
  const RunReport report = pipeline.run();
  log::clear_status();
  print_report(pipeline.description(), report);
  double loader_rate = 0;
  for (const NodeStats& n : report.nodes) {
    if (!batching || n.id != batching->id || n.active_ns == 0) continue;
    loader_rate = static_cast<double>(n.items) / (static_cast<double>(n.active_ns) * 1e-9);
    log::info("bench: data path ", log::fixed(loader_rate, 0), " images/s (", n.items, " images batched by '", n.id,
              "' in ", log::fixed(static_cast<double>(n.active_ns) * 1e-9, 2), " s)");
  }
  if (!batching) log::info("bench: no batch node upstream of the train stage: images/s not computed");
  if (watcher.received()) return watcher.received() == SIGINT ? 130 : 143;
  if (!args.model) return kExitOk;

  StageArgs train_args;
  train_args.node_id = full.nodes[static_cast<std::size_t>(train)].id;
  train_args.params = full.nodes[static_cast<std::size_t>(train)].params;
  train_args.device = full.device;
  const int batch = batching ? static_cast<int>(batching->params.integer("batch_size")) : 32;
  log::info("bench: the train step alone, ", args.steps, " steps of ", batch, " synthetic images on ", full.device, "...");
  const StepRate step = measure_step_rate(train_args, batch, args.steps);
  log::info("bench: train step ", log::fixed(step.images_per_s, 0), " images/s (median step ", log::fixed(step.median_step_s * 1e3, 1),
            " ms, batch ", step.batch, ", ", step.threads, " compute threads; ", step.model, ")");
  if (loader_rate <= 0) return kExitOk;
  const double ratio = loader_rate / step.images_per_s;
  if (ratio < 1) {
    log::info("bench: INPUT-BOUND: the data path delivers ", log::fixed(loader_rate, 0), " images/s, the step could take ",
              log::fixed(step.images_per_s, 0), ": training would wait for data ", log::fixed(100 * (1 - ratio), 0),
              "% of the time; make the slowest loader node cheaper (the table above) or give the loaders more threads");
  } else {
    log::info("bench: COMPUTE-BOUND: the data path delivers ", log::fixed(ratio, 1), "x the images/s the step takes (",
              log::fixed(loader_rate, 0), " against ", log::fixed(step.images_per_s, 0),
              "); on a CPU both share its cores, so while training the loader gets less than it had here alone");
  }
  return kExitOk;
}

}  // namespace

void add_bench_command(CLI::App& app, Context& context) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* command = app.add_subcommand("bench", "throughput of a pipeline's data path, and whether training is input-bound");
  command->footer(
      "Runs the nodes upstream of the train stage's training input (its loader: source, decode,\n"
      "augmentation, batching, batch stages) exactly as the pipeline would, for --batches batches\n"
      "into a discard sink; prints the data path's images/s (images batched over the batching\n"
      "node's active time) and the per-node table (items, busy time, items/s, call latency p50/p99,\n"
      "how long each serial node waited). --model then times the train stage's own step on\n"
      "synthetic batches of the same size (its model, optimizer, precision, threads) and says whether\n"
      "the pipeline is input-bound (the loader slower than the step) or compute-bound, by how much.\n"
      "--profile writes the data path's trace (see flowrun run --help).\n"
      "\n"
      "  flowrun bench pipelines/quickstart.json --batches 100 --model");
  command->add_option("PIPELINE", args->pipeline, "the description (.json)")->required();
  add_overrides(*command, args->overrides);
  command->add_option("--batches", args->batches, "batches to load (default 200)")->check(CLI::PositiveNumber);
  command->add_flag("--model", args->model, "also time the train step alone on synthetic batches and compare");
  command->add_option("--steps", args->steps, "train steps to time with --model (default 20)")->check(CLI::PositiveNumber);
  command->add_option("--profile", args->profile, "write a Chrome trace-event file of the data path (and TRACE.html beside it, drawn)")->type_name("TRACE.json");
  add_log_level(*command, context);
  command->callback([&context, args] { context.action = [&context, args] { return run_bench(context, *args); }; });
}

}  // namespace flowrun::cli
