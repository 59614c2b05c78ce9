// Process-wide memory settings for throughput. First touch of fresh memory is slow
// in VMs (measured here: about 2 us per 4 KiB page), and glibc's malloc returns
// large blocks (>= 128 KiB: a 224-px image, a batch) to the kernel on free, so the
// next allocation faults every page in again. keep_freed_memory() makes malloc keep
// freed memory for reuse instead. Call it once, early in main().
#pragma once

namespace flowrun {

void keep_freed_memory();

}  // namespace flowrun
