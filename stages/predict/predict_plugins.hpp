// The predict stage: labels batches with the model a saved_model source (or a train
// stage's final_model output) hands it, and writes each sample's top classes.
#pragma once

#include <cstdint>
#include <string>

#include "flowrun/options.hpp"
#include "flowrun/plugin.hpp"
#include "flowrun/stage.hpp"

namespace flowrun {

enum class PredictFormat { Auto, Jsonl, Csv };

struct PredictOptions {
  std::int64_t top_k = 5;
  std::string output;
  PredictFormat format = PredictFormat::Auto;

  template <typename D>
  static void declare(D& d) {
    d(&PredictOptions::top_k, "top_k", "classes reported per image, most probable first (at most the model's)")
        .range(1, 100000);
    d(&PredictOptions::output, "output",
      "file to write (atomically: complete or not at all); \"\" = standard output, a line per image as it is done");
    d(&PredictOptions::format, "format", "jsonl: {\"path\", \"top\": [{\"class\", \"index\", \"p\"}...]} per line; "
                                         "csv: path then class, index, p per rank; auto = csv for a .csv output",
      {{"auto", PredictFormat::Auto}, {"jsonl", PredictFormat::Jsonl}, {"csv", PredictFormat::Csv}});
  }
};

PluginInfo predict_plugin();
// The stage behind it (predict_stage.cpp, which needs LibTorch's headers).
std::unique_ptr<Stage> make_predict_stage(const StageArgs& args);

constexpr int kPredictModelPort = 0;
constexpr int kPredictBatchPort = 1;

}  // namespace flowrun
