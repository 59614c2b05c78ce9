#include "flowrun/memory.hpp"

#include <malloc.h>

namespace flowrun {

void keep_freed_memory() {
  // Serve every block from the heap (not a fresh mmap) and never trim the heap back.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, -1);
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace flowrun
