// The run report: one self-contained HTML file (no scripts, no network) with SVG
// charts of losses, accuracy, learning rate and throughput over steps, the confusion
// matrix as a heatmap, the per-class table, the worst misclassified samples as
// thumbnails, the pipeline graph and the resolved description. Torch-free.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "stages/messages/evaluation.hpp"
#include "stages/messages/metrics.hpp"

namespace flowrun {

struct ReportData {
  std::string name;           // the pipeline's
  std::string state;          // "running", "finished", "interrupted", "failed"
  std::string pipeline_json;  // the resolved description
  std::vector<Metrics> history;
  std::shared_ptr<const Evaluation> evaluation;  // the latest validation; may be null
  std::shared_ptr<const Evaluation> test;        // the test split, once evaluated
  std::vector<std::string> notes;                // diagnostics and other remarks, shown near the top
};

std::string render_report_html(const ReportData& data);

// Helpers the report uses, exposed for tests.
std::string base64(const std::uint8_t* data, std::size_t size);
std::string bmp_of(const Thumbnail& t);  // a 24-bit BMP file's bytes
struct PipelineSketch {
  std::vector<std::string> nodes;        // ids, in description order
  std::vector<std::string> plugins;      // per node
  std::vector<std::pair<int, int>> edges;
};
PipelineSketch sketch_pipeline(const std::string& pipeline_json);  // nodes and edges, ports dropped

}  // namespace flowrun
