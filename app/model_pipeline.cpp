#include "model_pipeline.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>

#include "flowrun/errors.hpp"
#include "flowrun/logging.hpp"
#include "stages/messages/sample.hpp"

namespace flowrun::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Per-sample plugins that bring every image to one size before batching (a batch
// stage's resize comes too late: batch refuses images of different sizes).
const std::set<std::string> kSizingPlugins = {"resize", "random_resized_crop"};

// The training run's evaluation chain, read off its checked description.
struct Chain {
  json doc;                          // the training description
  std::vector<json> nodes;           // the chain's node objects, source first (topological order)
  std::vector<std::string> edges;    // among them, "from.port -> to.port"
  std::string source;                // the chain's source node id
  std::string tail;                  // "node.port" that fed the evaluate node's batch input
  json evaluate;                     // that evaluate node
  json trainer;                      // the node that lent it the model (train); null when none
};

std::string endpoint(const NodeDesc& node, const std::vector<PortSpec>& ports, int port) {
  return ports.size() > 1 ? node.id + "." + ports[static_cast<std::size_t>(port)].name : node.id;
}

json node_object(const json& doc, const std::string& id) {
  for (const json& n : doc["nodes"])
    if (n.value("id", "") == id) return n;
  return json();
}

Chain evaluation_chain(Context& context, const SavedModelInfo& model) {
  Chain chain;
  const std::string source = model.path + " (the description it was trained with)";
  chain.doc = parse_description_json(model.pipeline_json, source);
  const Description d =
      validate_description(chain.doc, context.registry, context.loader, source, fs::current_path().string());
  // The evaluate node scoring the model after training (train.final_model), else the first one.
  int evaluate = -1;
  int trainer = -1;
  for (const EdgeDesc& e : d.edges) {
    const NodeDesc& to = d.nodes[static_cast<std::size_t>(e.to_node)];
    if (to.plugin->name != "evaluate" || to.plugin->inputs[static_cast<std::size_t>(e.to_port)].name != "model") continue;
    const NodeDesc& from = d.nodes[static_cast<std::size_t>(e.from_node)];
    const bool final = from.plugin->outputs[static_cast<std::size_t>(e.from_port)].name == "final_model";
    if (evaluate < 0 || final) {
      evaluate = e.to_node;
      trainer = e.from_node;
    }
    if (final) break;
  }
  if (evaluate < 0)
    throw UsageError(model.path + ": the description it was trained with has no evaluate node, so it says nothing of "
                     "how to preprocess images for it; add one to the training pipeline, or export the model and "
                     "give its folder a preprocessor_config.json");
  // Everything upstream of the evaluate node's batch input.
  std::set<int> in_chain;
  std::deque<int> todo;
  for (const EdgeDesc& e : d.edges) {
    if (e.to_node != evaluate ||
        d.nodes[static_cast<std::size_t>(e.to_node)].plugin->inputs[static_cast<std::size_t>(e.to_port)].name != "batch")
      continue;
    const NodeDesc& from = d.nodes[static_cast<std::size_t>(e.from_node)];
    chain.tail = endpoint(from, from.plugin->outputs, e.from_port);
    todo.push_back(e.from_node);
  }
  while (!todo.empty()) {
    const int n = todo.front();
    todo.pop_front();
    if (!in_chain.insert(n).second) continue;
    for (const EdgeDesc& e : d.edges)
      if (e.to_node == n) todo.push_back(e.from_node);
  }
  for (int i : d.topological_order) {
    if (!in_chain.count(i)) continue;
    const NodeDesc& node = d.nodes[static_cast<std::size_t>(i)];
    chain.nodes.push_back(node_object(chain.doc, node.id));
    if (node.plugin->role == Role::Source) {
      if (!chain.source.empty())
        throw UsageError(model.path + ": the evaluation chain of its description has two sources ('" + chain.source +
                         "', '" + node.id + "'); flowrun evaluate and predict take chains with one");
      chain.source = node.id;
    }
  }
  for (const EdgeDesc& e : d.edges) {
    if (!in_chain.count(e.from_node) || !in_chain.count(e.to_node)) continue;
    const NodeDesc& from = d.nodes[static_cast<std::size_t>(e.from_node)];
    const NodeDesc& to = d.nodes[static_cast<std::size_t>(e.to_node)];
    chain.edges.push_back(endpoint(from, from.plugin->outputs, e.from_port) + " -> " +
                          endpoint(to, to.plugin->inputs, e.to_port));
  }
  chain.evaluate = node_object(chain.doc, d.nodes[static_cast<std::size_t>(evaluate)].id);
  if (d.nodes[static_cast<std::size_t>(trainer)].plugin->name == "train")
    chain.trainer = node_object(chain.doc, d.nodes[static_cast<std::size_t>(trainer)].id);
  return chain;
}

// The mean and std a Hugging Face folder (preprocessor_config.json: image_mean,
// image_std) or a timm folder (config.json: pretrained_cfg.mean, .std) gives; 0.5 each,
// ViTImageProcessor's default, when neither says.
std::pair<std::vector<double>, std::vector<double>> folder_normalization(const fs::path& folder) {
  auto read = [](const fs::path& path) {
    std::ifstream in(path);
    return in ? json::parse(in, nullptr, /*allow_exceptions=*/false) : json();
  };
  auto pair_in = [](const json& j, const char* mean, const char* std) {
    return j.is_object() && j.contains(mean) && j.contains(std) && j[mean].is_array() && j[std].is_array() &&
           j[mean].size() == 3 && j[std].size() == 3;
  };
  try {
    const json hf = read(folder / "preprocessor_config.json");
    if (pair_in(hf, "image_mean", "image_std"))
      return {hf["image_mean"].get<std::vector<double>>(), hf["image_std"].get<std::vector<double>>()};
    const json config = read(folder / "config.json");
    if (config.is_object() && pair_in(config.value("pretrained_cfg", json()), "mean", "std"))
      return {config["pretrained_cfg"]["mean"].get<std::vector<double>>(),
              config["pretrained_cfg"]["std"].get<std::vector<double>>()};
  } catch (const json::exception& e) {
    throw UsageError(folder.string() + ": its image mean and std are not three numbers each (" + e.what() + ")");
  }
  return {std::vector<double>(3, 0.5), std::vector<double>(3, 0.5)};
}

// The chain Hugging Face and timm assume for a folder without a flowrun description:
// decode, resize to the model's size, normalize.
Chain default_chain(const SavedModelInfo& model) {
  fs::path folder = fs::is_directory(model.path) ? fs::path(model.path) : fs::path(model.path).parent_path();
  folder = folder.lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();  // "hf/" names the folder "hf"
  const auto [mean, std] = folder_normalization(folder);
  if (model.kind == SavedModelInfo::Kind::Checkpoint)
    log::warn(model.path, " records no description: images are resized to ", model.config.image_size,
              " px and normalized with mean/std 0.5 (--set changes it; --dry-run shows it)");
  Chain chain;
  chain.doc = {{"name", folder.filename().empty() ? "model" : folder.filename().string()}, {"device", "auto"}};
  chain.source = "data";
  chain.nodes = {json{{"id", "data"}, {"plugin", "image_files"}, {"params", json::object()}},
                 json{{"id", "decode"}, {"plugin", "jpeg_decode"}},
                 json{{"id", "resize"}, {"plugin", "resize"},
                      {"params", {{"size", {model.config.image_size, model.config.image_size}}}}},
                 json{{"id", "batch"}, {"plugin", "batch"},
                      {"params", {{"batch_size", 64}, {"mean", mean}, {"std", std}}}}};
  chain.edges = {"data -> decode", "decode -> resize", "resize -> batch"};
  chain.tail = "batch";
  chain.evaluate = {{"id", "eval"}, {"plugin", "evaluate"}};
  return chain;
}

Chain chain_for(Context& context, const SavedModelInfo& model) {
  return model.pipeline_json.empty() ? default_chain(model) : evaluation_chain(context, model);
}

std::string unique_id(const std::string& wanted, const Chain& chain) {
  std::set<std::string> taken = {chain.evaluate.value("id", "")};
  for (const json& n : chain.nodes) taken.insert(n.value("id", ""));
  std::string id = wanted;
  for (int k = 2; taken.count(id); ++k) id = wanted + std::to_string(k);
  return id;
}

json& node_in(Chain& chain, const std::string& id) {
  for (json& n : chain.nodes)
    if (n.value("id", "") == id) return n;
  throw std::logic_error("no node " + id + " in the chain");
}

// An edge "from[.port] -> to[.port]" as its two node ids and the target's port ("" = the only one).
struct Hop {
  std::string from, to, to_port;
};
Hop parse_hop(const std::string& edge) {
  const std::size_t arrow = edge.find(" -> ");
  const std::string from = edge.substr(0, arrow), to = edge.substr(arrow + 4);
  return {from.substr(0, from.find('.')), to.substr(0, to.find('.')),
          to.find('.') == std::string::npos ? "" : to.substr(to.find('.') + 1)};
}

const PortSpec* input_port(const PluginInfo& plugin, const std::string& name) {
  for (const PortSpec& p : plugin.inputs)
    if (name.empty() || p.name == name) return &p;
  return nullptr;
}

// The source put in the chain's may emit another kind than the one it replaces (cifar10
// emits decoded images, the file sources encoded bytes): a decoder goes in after it, or
// the chain's own decoder is bypassed.
void fit_source(Chain& chain, Context& context) {
  const PluginInfo* source = context.registry.find(node_in(chain, chain.source).value("plugin", ""));
  const std::string kind = source->outputs.front().kind;
  std::vector<std::string> edges;
  std::set<std::string> bypassed;
  for (const std::string& edge : chain.edges) {
    const Hop hop = parse_hop(edge);
    if (hop.from != chain.source) continue;
    const PluginInfo* target = context.registry.find(node_in(chain, hop.to).value("plugin", ""));
    const PortSpec* port = target ? input_port(*target, hop.to_port) : nullptr;
    if (!port || kind_accepts(port->kind, kind)) continue;
    if (kind_accepts(port->kind, kImageSampleKind)) {  // encoded bytes where images are taken: decode them
      const std::string decode = unique_id("decode", chain);
      chain.nodes.push_back({{"id", decode}, {"plugin", "jpeg_decode"}, {"params", json::object()}});
      edges.push_back(chain.source + " -> " + decode);
      edges.push_back(decode + edge.substr(edge.find(" -> ")));
      bypassed.insert(edge);
    } else if (kind == kImageSampleKind && kind_accepts(port->kind, kEncodedSampleKind)) {  // images reach a decoder: skip it
      bypassed.insert(edge);
      for (const std::string& next : chain.edges)
        if (parse_hop(next).from == hop.to) {
          edges.push_back(chain.source + next.substr(next.find(" -> ")));
          bypassed.insert(next);
        }
      chain.nodes.erase(std::remove_if(chain.nodes.begin(), chain.nodes.end(),
                                       [&](const json& n) { return n.value("id", "") == hop.to; }),
                        chain.nodes.end());
    } else {
      throw UsageError("the model's evaluation chain takes '" + port->kind + "' from its source, and " + source->name +
                       " gives '" + kind + "'");
    }
  }
  for (const std::string& edge : chain.edges)
    if (!bypassed.count(edge)) edges.push_back(edge);
  chain.edges = std::move(edges);
}

// The model's source, in the train stage's place: its precision and its normalization.
json model_node(const std::string& id, const Chain& chain, const SavedModelInfo& model, const ModelRunOptions& options,
                bool score_ema_beside) {
  json params = {{"path", model.path}, {"ema", options.ema}, {"ema_beside", score_ema_beside}};
  if (chain.trainer.is_object() && chain.trainer.contains("params")) {
    const json& t = chain.trainer["params"];
    for (const char* key : {"precision", "mean", "std"})
      if (t.contains(key)) params[key] = t[key];
  }
  return {{"id", id}, {"plugin", "saved_model"}, {"params", params}};
}

// Settings every chain gets: one epoch, the batch size asked for, every image kept.
void adjust_chain(Chain& chain, const ModelRunOptions& options, Context& context) {
  for (json& n : chain.nodes) {
    const PluginInfo* plugin = context.registry.find(n.value("plugin", ""));
    if (!plugin) continue;
    json& params = n["params"];
    if (!params.is_object()) params = json::object();
    if (plugin->params.find("epochs")) params["epochs"] = 1;
    if (plugin->name == "batch") {
      params["drop_last"] = false;
      if (options.batch_size > 0) params["batch_size"] = options.batch_size;
    }
  }
}

json assemble(const Chain& chain, const std::string& name, const std::string& summary, const ModelRunOptions& options,
              std::vector<json> extra_nodes, std::vector<std::string> extra_edges) {
  json doc = {{"name", chain.doc.value("name", "model") + "-" + name}, {"description", summary}};
  for (const char* key : {"seed", "device", "threads", "prefetch", "plugins"})
    if (chain.doc.contains(key)) doc[key] = chain.doc[key];
  if (!options.device.empty()) doc["device"] = options.device;
  json nodes = json::array();
  for (json& n : extra_nodes) nodes.push_back(std::move(n));
  for (const json& n : chain.nodes) nodes.push_back(n);
  doc["nodes"] = nodes;
  json edges = json::array();
  for (const std::string& e : chain.edges) edges.push_back(e);
  for (std::string& e : extra_edges) edges.push_back(std::move(e));
  doc["edges"] = edges;
  return doc;
}

// The user's labelled data in place of the chain's source.
json data_source(const std::string& id, const EvaluationData& data) {
  // Its classes are its own (sorted names); the evaluate node maps them to the model's by name.
  json params = {{"shuffle", false}, {"epochs", 1}};
  std::error_code ec;
  const fs::path path(data.path);
  if (fs::is_regular_file(path, ec) && path.extension() == ".tar") {
    params["paths"] = {data.path};
    if (!data.split.empty()) params["prefix"] = data.split + "/";
    return {{"id", id}, {"plugin", "tar"}, {"params", params}};
  }
  if (fs::is_directory(path, ec) &&
      (fs::exists(path / "cifar-10-binary.tar.gz") || fs::exists(path / "cifar-10-batches-bin"))) {
    params["root"] = data.path;
    params["subset"] = data.split.empty() ? "test" : data.split;
    params["download"] = false;
    return {{"id", id}, {"plugin", "cifar10"}, {"params", params}};
  }
  if (fs::is_directory(path, ec)) {
    params["root"] = data.split.empty() ? data.path : (path / data.split).string();
    return {{"id", id}, {"plugin", "image_folder"}, {"params", params}};
  }
  throw UsageError("--data " + data.path +
                   ": expected a tar file (ImageFolder layout inside), an image folder (one sub-folder per class) "
                   "or a folder with CIFAR-10's binary release");
}

}  // namespace

void add_model_run_options(CLI::App& command, ModelRunOptions& options) {
  command.add_option("MODEL", options.model, "a checkpoint (.h5) or an export folder")->required();
  command.add_flag("--ema", options.ema, "use the checkpoint's EMA weights");
  command.add_option("--device", options.device, "cpu, cuda, cuda:N or auto (default: the run's)")->type_name("D");
  command.add_option("--batch-size", options.batch_size, "images per batch (default: the run's)")
      ->type_name("B")
      ->check(CLI::Range(1, 1 << 20));
  command.add_flag("--dry-run", options.dry_run, "print the pipeline it would run, and stop");
}

SavedModelInfo read_model_argument(const std::string& path) {
  try {
    return read_saved_model_info(path);
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }
}

json evaluate_pipeline(Context& context, const SavedModelInfo& model, const ModelRunOptions& options,
                       const EvaluationData& data) {
  Chain chain = chain_for(context, model);
  if (model.pipeline_json.empty() && data.path.empty())
    throw UsageError(model.path + " records no data it was evaluated on: give --data");
  if (data.path.empty() && !data.split.empty())
    throw UsageError("--split " + data.split + " names a part of --data; without --data the run's own data is read");
  if (!data.path.empty()) {
    node_in(chain, chain.source) = data_source(chain.source, data);
    fit_source(chain, context);
  }
  adjust_chain(chain, options, context);
  const std::string model_id = unique_id("model", chain);
  const std::string eval_id = chain.evaluate.value("id", "eval");
  const std::string report_id = unique_id("report", chain);
  json evaluate = chain.evaluate;
  return assemble(chain, "evaluate", "flowrun evaluate " + model.path, options,
                  {model_node(model_id, chain, model, options, true), evaluate,
                   json{{"id", report_id}, {"plugin", "report"}}},
                  {model_id + " -> " + eval_id + ".model", chain.tail + " -> " + eval_id + ".batch",
                   eval_id + ".metrics -> " + report_id + ".metrics", eval_id + ".evaluations -> " + report_id + ".evaluations"});
}

json predict_pipeline(Context& context, const SavedModelInfo& model, const ModelRunOptions& options,
                      const std::vector<std::string>& inputs, int top_k, const std::string& output) {
  Chain chain = chain_for(context, model);
  node_in(chain, chain.source) = {{"id", chain.source}, {"plugin", "image_files"}, {"params", {{"paths", inputs}}}};
  fit_source(chain, context);
  adjust_chain(chain, options, context);
  // A broken file is reported and left out, not fatal; images of any size are brought
  // to the model's when the chain itself never resizes (a CIFAR chain of 32-px images).
  bool sized = false;
  std::string decode;
  for (json& n : chain.nodes) {
    const std::string plugin = n.value("plugin", "");
    sized = sized || kSizingPlugins.count(plugin);
    const PluginInfo* info = context.registry.find(plugin);
    if (info && info->params.find("on_error")) {
      n["params"]["on_error"] = "skip";
      if (decode.empty()) decode = n.value("id", "");
    }
  }
  if (!sized && !decode.empty()) {
    const std::string resize = unique_id("resize", chain);
    chain.nodes.push_back({{"id", resize},
                           {"plugin", "resize"},
                           {"params", {{"size", {model.config.image_size, model.config.image_size}}}}});
    // decode -> X becomes decode -> resize -> X.
    for (std::string& e : chain.edges) {
      const std::string from = e.substr(0, e.find(" -> "));
      if (from == decode || from == decode + ".out") e = resize + e.substr(e.find(" -> "));
    }
    chain.edges.push_back(decode + " -> " + resize);
  }
  const std::string model_id = unique_id("model", chain);
  const std::string predict_id = unique_id("predict", chain);
  json params = {{"top_k", top_k}, {"output", output}};
  return assemble(chain, "predict", "flowrun predict " + model.path, options,
                  {model_node(model_id, chain, model, options, false),
                   json{{"id", predict_id}, {"plugin", "predict"}, {"params", params}}},
                  {model_id + " -> " + predict_id + ".model", chain.tail + " -> " + predict_id + ".batch"});
}

}  // namespace flowrun::cli
