// Registers every built-in stage. Called explicitly by the command line, the tests
// and embedding programs (no static self-registration: what is registered is
// visible here).
#pragma once

namespace flowrun {
class Registry;
void register_builtin_stages(Registry& registry);
}  // namespace flowrun
