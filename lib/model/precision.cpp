#include "lib/model/precision.hpp"

#include <stdexcept>

namespace flowrun {

Precision precision_from_name(const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "bf16") return Precision::Bf16;
  if (name == "fp16") return Precision::Fp16;
  throw std::invalid_argument("unknown precision '" + name + "'; expected fp32, bf16 or fp16");
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::Fp32: return "fp32";
    case Precision::Bf16: return "bf16";
    case Precision::Fp16: return "fp16";
  }
  return "?";
}

Precision resolve_precision(PrecisionChoice choice, const std::string& device) {
  switch (choice) {
    case PrecisionChoice::Fp32: return Precision::Fp32;
    case PrecisionChoice::Bf16: return Precision::Bf16;
    case PrecisionChoice::Fp16: return Precision::Fp16;
    case PrecisionChoice::Auto: break;
  }
  return device.rfind("cuda", 0) == 0 ? Precision::Bf16 : Precision::Fp32;
}

}  // namespace flowrun
