# Every dependency is a Debian 12 package; nothing is downloaded at build time.
#   apt-get install libprotobuf-dev protobuf-compiler libonnx-dev libcpuinfo-dev \
#                   libxsimd-dev xtl-dev libgtest-dev libbenchmark-dev pkg-config libstb-dev
# xsimd 8.1's target links xtl, whose package must be found first.
find_package(xtl REQUIRED)
find_package(xsimd REQUIRED)
find_package(Threads REQUIRED)
if(Q8_BUILD_TESTS OR Q8_KERNELS_ONLY)
  find_package(GTest REQUIRED)
endif()
if(Q8_KERNELS_ONLY)
  return()
endif()

if(Q8_BUNDLED_DEPS)
  include(${CMAKE_CURRENT_LIST_DIR}/bundled_deps.cmake)
else()
  find_package(Protobuf REQUIRED)
  find_package(PkgConfig REQUIRED)
  # Debian 12's cpuinfo CMake config points at /usr/lib/lib/...: use pkg-config instead.
  pkg_check_modules(CPUINFO REQUIRED IMPORTED_TARGET libcpuinfo)
  # Image decoding for calibration folders (libstb-dev: PNG, JPEG, BMP).
  pkg_check_modules(STB REQUIRED IMPORTED_TARGET stb)
endif()

# The ONNX schema ships with libonnx-dev; it is compiled here, not copied into the tree.
set(Q8_ONNX_PROTO "/usr/include/onnx/onnx.proto" CACHE FILEPATH "onnx.proto from libonnx-dev")
if(NOT EXISTS "${Q8_ONNX_PROTO}")
  message(FATAL_ERROR "q8: ${Q8_ONNX_PROTO} not found; install libonnx-dev")
endif()

if(Q8_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
