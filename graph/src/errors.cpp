#include "flowrun/errors.hpp"

#include <algorithm>
#include <numeric>

namespace flowrun {
namespace {

std::string join_problems(const std::string& source, const std::vector<Problem>& problems) {
  std::string text;
  for (const Problem& p : problems) {
    if (!text.empty()) text += '\n';
    text += source;
    if (!p.pointer.empty()) text += ":" + p.pointer;
    text += ": " + p.message;
  }
  return text;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      std::size_t cost = (std::tolower(a[i - 1]) == std::tolower(b[j - 1])) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

DescriptionError::DescriptionError(std::string source, std::vector<Problem> problems)
    : std::runtime_error(join_problems(source, problems)),
      source_(std::move(source)),
      problems_(std::move(problems)) {}

DescriptionError::DescriptionError(std::string source, std::string pointer, std::string message)
    : DescriptionError(std::move(source), {Problem{std::move(pointer), std::move(message)}}) {}

NodeError::NodeError(std::string node_id, std::string plugin, std::string message)
    : std::runtime_error("node '" + node_id + "' (plugin " + plugin + "): " + message),
      node_id_(std::move(node_id)),
      plugin_(std::move(plugin)),
      message_(std::move(message)) {}

std::vector<std::string> closest_names(const std::string& word,
                                       const std::vector<std::string>& candidates,
                                       std::size_t max_results) {
  // Close enough: at most a third of the word's letters wrong, or a prefix/substring match.
  std::vector<std::pair<std::size_t, std::string>> scored;
  const std::size_t limit = std::max<std::size_t>(2, word.size() / 3);
  for (const std::string& c : candidates) {
    std::size_t d = edit_distance(word, c);
    bool contains = word.size() >= 3 && (c.find(word) != std::string::npos ||
                                          word.find(c) != std::string::npos);
    if (d <= limit || contains) scored.emplace_back(contains ? std::min<std::size_t>(d, 1) : d, c);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < max_results; ++i) out.push_back(scored[i].second);
  return out;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::vector<std::string> near = closest_names(word, candidates);
  if (near.empty()) return "";
  std::string text = " (did you mean ";
  for (std::size_t i = 0; i < near.size(); ++i) {
    if (i > 0) text += (i + 1 == near.size()) ? " or " : ", ";
    text += "'" + near[i] + "'";
  }
  return text + "?)";
}

}  // namespace flowrun
