// A pack that claims another plugin ABI version: must be refused before any call.
#include "flowrun/pack.hpp"

extern "C" __attribute__((visibility("default"))) const flowrun::PackEntry* flowrun_pack_entry() {
  static const flowrun::PackEntry entry{999, FLOWRUN_CXX11_ABI, "future", "9.9", nullptr};
  return &entry;
}
