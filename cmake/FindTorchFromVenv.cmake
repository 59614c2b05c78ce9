# Finds LibTorch inside the PyTorch wheel of the project's virtual environment
# (scripts/setup.sh creates it): asks that Python for torch.utils.cmake_prefix_path.
set(FLOWRUN_VENV "${CMAKE_SOURCE_DIR}/.venv" CACHE PATH "virtual environment holding the torch wheel")
if(NOT Torch_DIR)
  set(_py "${FLOWRUN_VENV}/bin/python")
  if(NOT EXISTS "${_py}")
    message(FATAL_ERROR "flowrun: no Python at ${_py}; run scripts/setup.sh first, "
                        "or pass -DFLOWRUN_VENV=/path/to/venv (a venv with torch installed)")
  endif()
  execute_process(COMMAND "${_py}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                  OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "flowrun: ${_py} cannot import torch; run scripts/setup.sh")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
endif()
# The wheel is a CUDA build: its CMake config looks for the CUDA toolkit (nvcc).
find_package(Torch REQUIRED)
message(STATUS "flowrun: LibTorch ${Torch_VERSION} from ${Torch_DIR}")
