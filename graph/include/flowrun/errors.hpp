// Error types a user can cause, each mapped to one exit code by the command line.
//
// DescriptionError: the pipeline description (or a --set override, or a plugin pack
// it names) is wrong. Raised before anything runs; carries every problem found, each
// located by a JSON pointer such as /nodes/3/params/scale. Exit code 2.
// NodeError: a stage failed while the graph was starting or running. Names the node
// id and plugin. Exit code 1.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace flowrun {

struct Problem {
  std::string pointer;  // JSON pointer into the description; "" = the whole file
  std::string message;  // what is wrong and what was expected
};

class DescriptionError : public std::runtime_error {
 public:
  // `source` names where the description came from (a file path, "--set", ...).
  DescriptionError(std::string source, std::vector<Problem> problems);
  DescriptionError(std::string source, std::string pointer, std::string message);

  const std::string& source() const { return source_; }
  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::string source_;
  std::vector<Problem> problems_;
};

class NodeError : public std::runtime_error {
 public:
  NodeError(std::string node_id, std::string plugin, std::string message);

  const std::string& node_id() const { return node_id_; }
  const std::string& plugin() const { return plugin_; }
  const std::string& message() const { return message_; }

 private:
  std::string node_id_;
  std::string plugin_;
  std::string message_;
};

// Closest candidates to `word` by edit distance, best first, for "did you mean" hints.
std::vector<std::string> closest_names(const std::string& word,
                                       const std::vector<std::string>& candidates,
                                       std::size_t max_results = 3);
// " (did you mean 'a' or 'b'?)" or "" when nothing is close.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace flowrun
