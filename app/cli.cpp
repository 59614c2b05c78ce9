#include "cli.hpp"

#include <ctime>
#include <filesystem>

#include "device.hpp"
#include "flowrun/errors.hpp"

namespace flowrun::cli {

void add_overrides(CLI::App& command, std::vector<std::string>& overrides) {
  command.add_option("--set", overrides,
                     "override a value of the description; PATH uses dots and node ids, VALUE is JSON or a bare "
                     "string (repeatable), e.g. --set seed=3 --set nodes.augment.plugin=randaugment")
      ->type_name("PATH=VALUE")
      ->take_all()
      ->allow_extra_args(false);
}

void add_log_level(CLI::App& command, Context& context) {
  command.add_option("--log-level", context.log_level, "trace, debug, info (default), warn, error, off")
      ->type_name("LEVEL");
}

void load_search_path_packs(Context& context) {
  try {
    context.loader.load_search_path(context.registry);
  } catch (const std::exception& e) {
    throw DescriptionError("FLOWRUN_PLUGIN_PATH", "", e.what());
  }
}

std::string self_executable() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot find the flowrun executable (/proc/self/exe): " + ec.message());
  // Rebuilt (or reinstalled) while this process runs: the path names another file now,
  // and the kernel shows the one running as "PATH (deleted)". /proc/self/exe still
  // executes the binary this process started from, so a long sweep keeps running one
  // build from its first run to its last.
  const std::string deleted = " (deleted)";
  const std::string text = self.string();
  if (text.size() > deleted.size() && text.compare(text.size() - deleted.size(), deleted.size(), deleted) == 0)
    return "/proc/self/exe";
  return text;
}

namespace {

void resolve(Description& d) {
  try {
    d.device = resolve_device(d.device);
  } catch (const std::exception& e) {
    throw DescriptionError(d.source, "/device", e.what());
  }
}

}  // namespace

Description load_built_pipeline(Context& context, nlohmann::json document, const std::string& label,
                                const std::vector<std::string>& overrides) {
  load_search_path_packs(context);
  apply_overrides(document, overrides);
  Description d = validate_description(document, context.registry, context.loader, label,
                                       std::filesystem::current_path().string());
  resolve(d);
  return d;
}

std::string run_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", &tm);
  return text;
}

Description load_pipeline(Context& context, const std::string& path, const std::vector<std::string>& overrides) {
  load_search_path_packs(context);
  Description d = load_description(path, overrides, context.registry, context.loader);
  resolve(d);
  return d;
}

}  // namespace flowrun::cli
