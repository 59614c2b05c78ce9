// The trace as a self-contained HTML page (internal to the profiler).
#pragma once

#include <string>

namespace flowrun::profiling {

// A page that draws `trace_json` (Chrome trace-event JSON, as TraceRecorder writes it):
// thread rows with nested slices, counter tracks, zoom and pan, totals per slice name.
std::string trace_viewer_page(const std::string& title, const std::string& trace_json);

// Where the page goes beside a trace file: trace.json -> trace.html, other names + ".html".
std::string trace_viewer_path(const std::string& trace_path);

}  // namespace flowrun::profiling
