// The kind name of ModelSnapshot (model_snapshot.hpp), for plugin declarations that
// must compile without LibTorch's headers.
#pragma once

namespace flowrun {

constexpr const char* kModelKind = "model";

}  // namespace flowrun
