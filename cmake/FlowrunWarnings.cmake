# Warnings for flowrun's own targets (not for third-party headers).
function(flowrun_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
                         -Wnon-virtual-dtor -Wno-unused-parameter)
endfunction()
