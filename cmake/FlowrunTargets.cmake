# Helpers for flowrun's own targets: warnings, link order.
function(flowrun_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         -Wnon-virtual-dtor -Wno-unused-parameter)
endfunction()

# LibTorch's wheel exports its own copies of std::filesystem functions (built with a
# newer GCC); when libtorch.so comes before libstdc++.so.6 in an executable's
# DT_NEEDED list, the dynamic linker binds std::filesystem calls of the whole
# process to those copies, which crash (seen: remove_all jumping to address 0).
# Call this first on every executable that links LibTorch, directly or not, so the
# system libstdc++ is searched first.
function(flowrun_libstdcxx_first target)
  target_link_libraries(${target} PRIVATE "-Wl,--push-state,--no-as-needed" stdc++ "-Wl,--pop-state")
endfunction()
