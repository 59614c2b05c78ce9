// predict: runs the model it is handed on each batch and writes each image's top
// classes. Batches that arrive before the model wait in order (holding their prefetch
// slots, so the loader stays at most `prefetch` items ahead).
//
// Output goes to standard output batch by batch (a pipe sees results while the run
// goes on) or to an AtomicFile that becomes `output` only when every batch is written:
// an interrupted or failed run leaves a user's earlier file as it was.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"
#include "lib/io/csv.hpp"
#include "lib/model/inference.hpp"
#include "stages/messages/batch.hpp"
#include "stages/messages/model_snapshot.hpp"
#include "stages/predict/predict_plugins.hpp"

namespace flowrun {
namespace {

class PredictStage : public OrderedStage {
 public:
  explicit PredictStage(const StageArgs& args)
      : OrderedStage(args),
        options_(read_options<PredictOptions>(args.params)),
        csv_(options_.format == PredictFormat::Csv ||
             (options_.format == PredictFormat::Auto && options_.output.size() > 4 &&
              options_.output.compare(options_.output.size() - 4, 4, ".csv") == 0)) {}

  void start() override {
    if (!options_.output.empty()) file_ = std::make_unique<AtomicFile>(options_.output);
    started_ = std::chrono::steady_clock::now();
    last_progress_ = started_;
  }

  void process(Message in, Emitter&) override {
    if (in.port == kPredictModelPort) {
      if (model_.payload) throw std::runtime_error("a second model arrived; predict labels with one model");
      model_ = std::move(in);
      const auto& m = model_.as<ModelSnapshot>();
      top_k_ = std::min<std::int64_t>(options_.top_k, m.num_classes);
      if (csv_) write(csv_header());
    } else {
      waiting_.push_back(std::move(in));
    }
    if (!model_.payload) return;
    while (!waiting_.empty()) {
      label(waiting_.front().as<Batch>());
      waiting_.pop_front();
    }
  }

  void finish(Emitter&) override {
    if (!waiting_.empty()) throw std::runtime_error("the model input ended without a model: nothing was labelled");
    if (images_ == 0)
      throw std::runtime_error("no image could be labelled (every input was skipped: see the messages above)" +
                               (options_.output.empty() ? std::string() : "; " + options_.output + " was not written"));
    if (file_) file_->commit();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    log::clear_status();
    log::info("[", node_id(), "] ", images_, " images labelled in ", log::fixed(seconds, 2), " s (",
              log::fixed(seconds > 0 ? static_cast<double>(images_) / seconds : 0, 1), " images/s)",
              options_.output.empty() ? std::string() : ": " + options_.output);
  }

 private:
  void label(const Batch& batch) {
    batch.wait_ready();
    const auto& m = model_.as<ModelSnapshot>();
    torch::Tensor probabilities, classes;
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor logits = predict_logits(m.model, m.input, m.precision, batch.images);
      auto [p, c] = torch::softmax(logits.to(torch::kFloat), 1).topk(top_k_, 1);
      probabilities = p.to(torch::kCPU).contiguous();
      classes = c.to(torch::kCPU).contiguous();
    }
    const float* p = probabilities.data_ptr<float>();
    const std::int64_t* c = classes.data_ptr<std::int64_t>();
    std::string text;
    for (std::int64_t i = 0; i < probabilities.size(0); ++i) {
      const std::string key = static_cast<std::size_t>(i) < batch.keys.size() ? batch.keys[static_cast<std::size_t>(i)] : "";
      text += csv_ ? csv_line(key, p + i * top_k_, c + i * top_k_, m.classes)
                   : json_line(key, p + i * top_k_, c + i * top_k_, m.classes);
    }
    write(text);
    images_ += static_cast<std::uint64_t>(probabilities.size(0));
    report_progress(batch);
  }

  // A probability to 6 decimals: float32's precision, without float-to-double noise digits.
  static double rounded(float p) { return std::round(static_cast<double>(p) * 1e6) / 1e6; }

  std::string csv_header() const {
    std::string out = "path";
    for (std::int64_t r = 1; r <= top_k_; ++r) {
      const std::string n = std::to_string(r);
      out += ",class_" + n + ",index_" + n + ",p_" + n;
    }
    return out + "\n";
  }

  std::string name_of(std::int64_t index, const std::vector<std::string>& classes) const {
    return index >= 0 && static_cast<std::size_t>(index) < classes.size() ? classes[static_cast<std::size_t>(index)]
                                                                           : std::to_string(index);
  }

  std::string csv_line(const std::string& key, const float* p, const std::int64_t* c,
                       const std::vector<std::string>& classes) const {
    std::ostringstream out;
    out << csv_field(key);
    for (std::int64_t r = 0; r < top_k_; ++r)
      out << ',' << csv_field(name_of(c[r], classes)) << ',' << c[r] << ',' << rounded(p[r]);
    out << '\n';
    return out.str();
  }

  std::string json_line(const std::string& key, const float* p, const std::int64_t* c,
                        const std::vector<std::string>& classes) const {
    nlohmann::json top = nlohmann::json::array();
    for (std::int64_t r = 0; r < top_k_; ++r)
      top.push_back({{"class", name_of(c[r], classes)}, {"index", c[r]}, {"p", rounded(p[r])}});
    return nlohmann::json{{"path", key}, {"top", top}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
           "\n";
  }

  void write(const std::string& text) {
    if (file_) {
      file_->write(text);
    } else {
      std::cout << text << std::flush;
      if (!std::cout) throw std::runtime_error("cannot write the predictions to standard output");
    }
  }

  // A line every few seconds: how far, how fast, how long still.
  void report_progress(const Batch& batch) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_progress_ < std::chrono::seconds(5)) return;
    last_progress_ = now;
    const double seconds = std::chrono::duration<double>(now - started_).count();
    const double rate = static_cast<double>(images_) / seconds;
    const std::uint64_t total = batch.dataset ? batch.dataset->epoch_size : 0;
    std::string line = "[" + node_id() + "] " + std::to_string(images_) +
                       (total ? " of " + std::to_string(total) : std::string()) + " images, " + log::fixed(rate, 1) +
                       " images/s";
    if (total > images_ && rate > 0) line += ", ETA " + log::fixed(static_cast<double>(total - images_) / rate, 0) + " s";
    // The status line shares the terminal with predictions written to standard output:
    // plain log lines (on standard error) then, so that neither cuts into the other.
    if (log::interactive() && file_) log::status(line);
    else log::info(line);
  }

  PredictOptions options_;
  bool csv_;
  std::unique_ptr<AtomicFile> file_;
  Message model_;
  std::deque<Message> waiting_;
  std::int64_t top_k_ = 1;
  std::uint64_t images_ = 0;
  std::chrono::steady_clock::time_point started_, last_progress_;
};

}  // namespace

std::unique_ptr<Stage> make_predict_stage(const StageArgs& args) { return std::make_unique<PredictStage>(args); }

}  // namespace flowrun
