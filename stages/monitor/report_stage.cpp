// report: the run folder's files for people and scripts. From the train stage's
// metrics and evaluations outputs it writes
//   metrics.jsonl       one JSON object per metrics record (scope, step, epoch, values), as they come
//   eval.json           the latest evaluation in full: totals, per class, confusion matrix, EMA
//   test.json, test_misclassified.json   the same for the test split (once, after training)
//   misclassified.json  its worst misclassified samples (file, true and predicted class, confidence, loss)
//   label_errors.json   after training: suspected label errors among the training samples
//   report.html         the run report (report_html.hpp), rewritten after each evaluation and at the end
// All but metrics.jsonl are replaced atomically; metrics.jsonl is appended line by
// line (tail -f works) and rewritten clean at the end. A resumed run continues the
// same files: records the killed run wrote after its checkpoint are dropped.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "flowrun/options.hpp"
#include "lib/distributed/process_group.hpp"
#include "stages/messages/evaluation.hpp"
#include "stages/messages/metrics.hpp"
#include "stages/monitor/monitor_plugins.hpp"
#include "stages/monitor/report_html.hpp"

namespace flowrun {
namespace fs = std::filesystem;
namespace {

constexpr int kMetricsPort = 0;

nlohmann::json record_json(const Metrics& m) {
  nlohmann::json j = {{"scope", m.scope}, {"step", m.step}, {"epoch", m.epoch}};
  for (const auto& [name, value] : m.values) j[name] = value;
  if (!m.note.empty()) j["note"] = m.note;
  return j;
}

Metrics record_from_json(const nlohmann::json& j) {
  Metrics m;
  m.scope = j.value("scope", "");
  m.step = j.value("step", std::uint64_t{0});
  m.epoch = j.value("epoch", std::uint64_t{0});
  m.note = j.value("note", "");
  for (const auto& [key, value] : j.items())
    if (value.is_number() && key != "step" && key != "epoch") m.values[key] = value.get<double>();
  return m;
}

struct ReportOptions {
  std::string folder;
  bool html = true;
  template <typename D>
  static void declare(D& d) {
    d(&ReportOptions::folder, "folder", "where the files go; \"\" = the run folder");
    d(&ReportOptions::html, "html", "write report.html");
  }
};

class ReportStage : public OrderedStage {
 public:
  explicit ReportStage(const StageArgs& args) : ReportStage(args, read_options<ReportOptions>(args.params)) {}
  ReportStage(const StageArgs& args, const ReportOptions& o)
      : OrderedStage(args),
        folder_(!o.folder.empty() ? o.folder : args.run->in_folder("", "runs/report")),
        html_(o.html),
        writes_(writes_run_files()) {
    data_.name = args.run->name;
    data_.pipeline_json = args.run->resolved_json;
    data_.state = "running";
  }

  void start() override {
    if (!writes_) return;  // data-parallel: rank 0 writes
    fs::create_directories(folder_);
    jsonl_path_ = (fs::path(folder_) / "metrics.jsonl").string();
    std::ifstream previous(jsonl_path_);
    for (std::string line; std::getline(previous, line);) {
      if (line.empty()) continue;
      try {
        data_.history.push_back(record_from_json(nlohmann::json::parse(line)));
      } catch (const nlohmann::json::exception&) {
        // A line cut short by a kill: dropped.
      }
    }
    for (const Metrics& m : data_.history)
      if (!m.note.empty()) data_.notes.push_back("step " + std::to_string(m.step) + ": " + m.note);
    jsonl_.open(jsonl_path_, std::ios::app);
    if (!jsonl_) throw std::runtime_error("cannot write " + jsonl_path_);
  }

  void process(Message in, Emitter&) override {
    if (!writes_) return;
    if (in.port == kMetricsPort) add_record(in.as<Metrics>());
    else add_evaluation(std::static_pointer_cast<const Evaluation>(in.payload));
  }

  void finish(Emitter&) override {
    if (!writes_) return;
    data_.state = "finished";
    std::string clean;
    for (const Metrics& m : data_.history) clean += record_json(m).dump() + "\n";
    jsonl_.close();
    write_file_atomically(jsonl_path_, clean);
    write_report();
    if (html_) log::info("[", node_id(), "] run report: ", (fs::path(folder_) / "report.html").string());
    finished_ = true;
  }

  void stop(StopReason reason) override {
    if (finished_ || !writes_) return;
    data_.state = stop_reason_name(reason);
    write_report();
  }

 private:
  void add_record(const Metrics& m) {
    // A resumed run repeats steps the killed run had reached after its checkpoint.
    auto& h = data_.history;
    h.erase(std::remove_if(h.begin(), h.end(), [&](const Metrics& old) { return old.scope == m.scope && old.step >= m.step; }),
            h.end());
    h.push_back(m);
    if (!m.note.empty()) data_.notes.push_back("step " + std::to_string(m.step) + ": " + m.note);
    jsonl_ << record_json(m).dump() << "\n";
    jsonl_.flush();
  }

  void add_evaluation(std::shared_ptr<const Evaluation> e) {
    auto name = [&](std::int64_t c) {
      return c >= 0 && static_cast<std::size_t>(c) < e->classes.size() ? e->classes[c] : std::to_string(c);
    };
    const bool test = e->split == "test";
    if (e->metrics) {
      nlohmann::json j = {{"split", e->split}, {"epoch", e->epoch}, {"step", e->step}, {"classes", e->classes},
                          {"metrics", nlohmann::json::parse(e->metrics->to_json(e->classes))}};
      if (e->ema_metrics) j["ema_metrics"] = nlohmann::json::parse(e->ema_metrics->to_json(e->classes));
      write_file_atomically((fs::path(folder_) / (test ? "test.json" : "eval.json")).string(), j.dump(2) + "\n");
      nlohmann::json worst = nlohmann::json::array();
      for (const Misclassified& m : e->worst) {
        worst.push_back({{"key", m.key}, {"true", name(m.label)}, {"predicted", name(m.predicted)},
                         {"confidence", m.confidence}, {"loss", m.loss}});
      }
      write_file_atomically((fs::path(folder_) / (test ? "test_misclassified.json" : "misclassified.json")).string(),
                       nlohmann::json{{"epoch", e->epoch}, {"step", e->step}, {"samples", worst}}.dump(2) + "\n");
    }
    if (!e->suspected_label_errors.empty()) {
      nlohmann::json suspects = nlohmann::json::array();
      for (const Misclassified& m : e->suspected_label_errors) {
        suspects.push_back({{"key", m.key}, {"label", name(m.label)}, {"model_says", name(m.predicted)},
                            {"confidence", m.confidence}, {"loss", m.loss}});
      }
      write_file_atomically((fs::path(folder_) / "label_errors.json").string(),
                       nlohmann::json{{"samples", suspects}}.dump(2) + "\n");
    }
    if (test) data_.test = std::move(e);
    else data_.evaluation = std::move(e);
    write_report();
  }

  void write_report() {
    if (html_) write_file_atomically((fs::path(folder_) / "report.html").string(), render_report_html(data_));
  }

  std::string folder_;
  bool html_;
  bool writes_;
  std::string jsonl_path_;
  std::ofstream jsonl_;
  ReportData data_;
  bool finished_ = false;
};

}  // namespace

PluginInfo report_plugin() {
  PluginInfo p;
  p.name = "report";
  p.summary = "Writes metrics.jsonl, eval/test JSON, misclassified samples, label errors and an HTML run report";
  p.description =
      "Ordered sink for the train stage's metrics and (optional) evaluations outputs. In the run folder\n"
      "(or `folder`): metrics.jsonl (one JSON object per record: scope train / train_epoch / eval / test /\n"
      "note, step, epoch, loss, accuracy, lr and lr per optimizer group, grad_norm, images_per_s...),\n"
      "eval.json (the latest evaluation: totals, per-class precision / recall / F1, confusion matrix, the\n"
      "EMA model's), misclassified.json (the worst misclassified samples), test.json and\n"
      "test_misclassified.json (the test split, once), label_errors.json (suspected label errors after\n"
      "training) and report.html: one file, no scripts or network, with SVG charts of loss, accuracy,\n"
      "learning rate, throughput and gradient norm over steps, the diagnoses, the confusion matrix as a\n"
      "heatmap, the per-class table, thumbnails of misclassified samples and suspected label errors, the\n"
      "pipeline graph and the resolved description. Rewritten after each evaluation and when the run ends\n"
      "(also when stopped). A resumed run continues the same files.\n"
      "\n"
      "  {\"id\": \"report\", \"plugin\": \"report\"},   edges: \"train -> report.metrics\",\n"
      "  \"train.evaluations -> report.evaluations\"";
  p.role = Role::Ordered;
  p.own_thread = true;  // writes files: never waits behind the train step, nor the step for its disk
  p.inputs = {{"metrics", kMetricsKind, "the train stage's metrics output"},
              {"evaluations", kEvaluationKind, "the train stage's evaluations output", false}};
  declare_options<ReportOptions>(p.params);
  p.create = [](const StageArgs& args) { return std::make_unique<ReportStage>(args); };
  return p;
}

}  // namespace flowrun
