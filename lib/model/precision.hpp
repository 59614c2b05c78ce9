// The autocast precision of a forward pass, without LibTorch's headers (plugin
// declarations name it); running with it is inference.hpp's job.
#pragma once

#include <string>

namespace flowrun {

enum class Precision { Fp32, Bf16, Fp16 };
Precision precision_from_name(const std::string& name);  // "fp32" | "bf16" | "fp16"
const char* precision_name(Precision precision);

// What a stage's `precision` parameter says: a precision, or auto = bf16 on CUDA and
// fp32 on the CPU (the train stage's and the saved_model source's default).
enum class PrecisionChoice { Auto, Fp32, Bf16, Fp16 };
Precision resolve_precision(PrecisionChoice choice, const std::string& device);

}  // namespace flowrun
