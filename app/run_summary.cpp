#include "run_summary.hpp"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "flowrun/atomic_file.hpp"
#include "flowrun/logging.hpp"

namespace flowrun::cli {
namespace {

double seconds(std::uint64_t ns) { return static_cast<double>(ns) * 1e-9; }

// "12.3 us", "4.56 ms", "1.23 s": call durations span six orders of magnitude.
std::string duration_text(double s) {
  char text[32];
  if (s < 1e-3) std::snprintf(text, sizeof text, "%.2f us", s * 1e6);
  else if (s < 1) std::snprintf(text, sizeof text, "%.2f ms", s * 1e3);
  else std::snprintf(text, sizeof text, "%.2f s", s);
  return text;
}

const NodeStats* stats_of(const RunReport& report, const std::string& id) {
  for (const NodeStats& n : report.nodes)
    if (n.id == id) return &n;
  return nullptr;
}

}  // namespace

std::vector<DataStall> data_stalls(const Description& description, const RunReport& report) {
  std::vector<DataStall> out;
  for (std::size_t i = 0; i < description.nodes.size(); ++i) {
    const NodeDesc& node = description.nodes[i];
    if (node.plugin->name != "train") continue;
    const NodeStats* train = stats_of(report, node.id);
    if (!train || train->active_ns == 0) continue;
    DataStall stall;
    stall.node = node.id;
    // While the model is lent to evaluate nodes the stage waits for them, not for
    // batches: their busy time counts as its own.
    std::uint64_t busy = train->busy_ns;
    for (const EdgeDesc& e : description.edges) {
      const NodeDesc& to = description.nodes[static_cast<std::size_t>(e.to_node)];
      if (e.from_node != static_cast<int>(i) || to.plugin->name != "evaluate") continue;
      if (const NodeStats* evaluate = stats_of(report, to.id)) busy += evaluate->busy_ns;
    }
    stall.share = train->active_ns > busy
                      ? static_cast<double>(train->active_ns - busy) / static_cast<double>(train->active_ns)
                      : 0.0;
    stall.verdict = stall.share < 0.05   ? "not input-bound"
                    : stall.share < 0.20 ? "moderately input-bound"
                                         : "highly input-bound";
    // The loader: every node upstream of the train stage.
    std::uint64_t loader_ns = 0, top_ns = 0;
    const NodeStats* top = nullptr;
    for (int u : description.upstream_of(static_cast<int>(i))) {
      if (u == static_cast<int>(i)) continue;  // upstream_of lists the node itself first
      const NodeStats* s = stats_of(report, description.nodes[static_cast<std::size_t>(u)].id);
      if (!s) continue;
      loader_ns += s->busy_ns;
      if (s->busy_ns > top_ns) top_ns = s->busy_ns, top = s;
    }
    if (top && loader_ns > 0) {
      stall.bottleneck = top->id + " (" + top->plugin + ") is " +
                         log::fixed(100.0 * static_cast<double>(top_ns) / static_cast<double>(loader_ns), 0) +
                         "% of the loaders' busy time";
    }
    out.push_back(std::move(stall));
  }
  return out;
}

void print_report(const Description& description, const RunReport& report) {
  // The slowest start (a source indexing its files) is named: it is paid before any data flows.
  const NodeStats* slowest_start = nullptr;
  for (const NodeStats& n : report.nodes)
    if (!slowest_start || n.start_ns > slowest_start->start_ns) slowest_start = &n;
  log::info("run ", stop_reason_name(report.reason), " in ", log::fixed(report.seconds, 2), " s on ", report.threads,
            " threads (starting the stages ", log::fixed(report.start_seconds, 3), " s",
            slowest_start && slowest_start->start_ns > 0
                ? std::string(", most of it ") + slowest_start->id + " " + log::fixed(seconds(slowest_start->start_ns), 3) + " s"
                : std::string(),
            ")");
  log::info("  node             plugin                items    busy (s)   items/s busy    call p50    call p99  waited for input");
  for (const NodeStats& n : report.nodes) {
    const double busy = seconds(n.busy_ns);
    // Serial (ordered) stages: the share of their active span, first call to last, spent
    // without work. Map stages run on many threads at once, so theirs says nothing.
    const int index = description.node_index(n.id);
    const bool serial = index >= 0 && description.nodes[static_cast<std::size_t>(index)].plugin->role == Role::Ordered &&
                        n.active_ns > 0 && n.busy_ns <= n.active_ns;
    const std::string waited =
        serial ? log::fixed(100.0 * static_cast<double>(n.active_ns - n.busy_ns) / static_cast<double>(n.active_ns), 1) + "%" : "-";
    char line[256];
    std::snprintf(line, sizeof line, "  %-16s %-16s %10llu %11.3f %14.0f %11s %11s %17s", n.id.c_str(), n.plugin.c_str(),
                  static_cast<unsigned long long>(n.items), busy, busy > 0 ? static_cast<double>(n.items) / busy : 0.0,
                  duration_text(n.p50_s).c_str(), duration_text(n.p99_s).c_str(), waited.c_str());
    log::info(line);
  }
  for (const SourceStats& s : report.sources) log::debug("  source ", s.id, ": peak ", s.peak_in_flight, " items in flight");
  for (const DataStall& s : data_stalls(description, report)) {
    std::string advice;
    if (s.share >= 0.05) {
      advice = description.threads == 1 ? ": the loaders run between steps on one runtime thread; more \"threads\" "
                                           "overlap them with the step (on 2 cores that costs the step its second core)"
                                         : ": give the loaders more \"threads\" or make the heaviest one cheaper";
    }
    log::info("[", s.node, "] data stall: waited for batches ", log::fixed(100 * s.share, 1), "% of its active time (",
              s.verdict, ")", s.bottleneck.empty() ? "" : "; " + s.bottleneck, advice);
  }
}

void write_run_summary(const std::string& folder, const std::string& pipeline, const Description& description,
                       const RunReport* report, const std::string& error, int exit_code) {
  nlohmann::json j = {{"pipeline", pipeline}, {"exit_code", exit_code}};
  if (report) {
    j["reason"] = stop_reason_name(report->reason);
    j["seconds"] = report->seconds;
    j["start_seconds"] = report->start_seconds;
    j["threads"] = report->threads;
    if (!report->ended_by.empty()) j["ended_by"] = report->ended_by, j["ended_why"] = report->ended_why;
    j["nodes"] = nlohmann::json::array();
    for (const NodeStats& n : report->nodes) {
      j["nodes"].push_back({{"id", n.id}, {"plugin", n.plugin}, {"items", n.items}, {"busy_s", seconds(n.busy_ns)},
                            {"active_s", seconds(n.active_ns)}, {"calls", n.calls}, {"call_p50_s", n.p50_s},
                            {"call_p90_s", n.p90_s}, {"call_p99_s", n.p99_s}, {"max_queued_packets", n.max_queued},
                            {"start_s", seconds(n.start_ns)}});
    }
    j["data_stall"] = nlohmann::json::object();
    for (const DataStall& s : data_stalls(description, *report))
      j["data_stall"][s.node] = {{"share", s.share}, {"verdict", s.verdict}, {"bottleneck", s.bottleneck}};
  } else {
    j["reason"] = "failed";
    j["error"] = error;
  }
  try {
    write_file_atomically((std::filesystem::path(folder) / "run.json").string(), j.dump(1) + "\n");
  } catch (const std::exception& e) {
    log::warn("could not write run.json: ", e.what());
  }
}

}  // namespace flowrun::cli
