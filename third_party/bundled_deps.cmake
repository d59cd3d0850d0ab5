# The dependency-light build (Q8_BUNDLED_DEPS=ON): the same target names the engine links
# (protobuf::libprotobuf-lite, protobuf::protoc, PkgConfig::CPUINFO, PkgConfig::STB), but each one
# is linked into q8 itself, so that q8's programs and libraries need nothing at run time beyond
# the C and C++ runtimes:
#   - protobuf-lite: a static, PIC, hidden-visibility build of Debian's protobuf 3.21.12 sources,
#     made by scripts/build_deps.sh into Q8_DEPS_PREFIX; the host's protoc (same version)
#     generates the code;
#   - cpuinfo: third_party/cpu_features.cpp answers the few cpuinfo calls q8 makes from CPUID or
#     the kernel's hardware capability bits (Debian ships no static cpuinfo, and an empty root has
#     no /proc or /sys for it to read);
#   - stb: stb_image's implementation compiled from libstb-dev's header.
set(Q8_DEPS_PREFIX "" CACHE PATH "Prefix made by scripts/build_deps.sh (lib/libprotobuf-lite.a, include/)")
if(NOT EXISTS "${Q8_DEPS_PREFIX}/lib/libprotobuf-lite.a")
  message(FATAL_ERROR "q8: Q8_BUNDLED_DEPS needs Q8_DEPS_PREFIX=<prefix from scripts/build_deps.sh>; "
                      "'${Q8_DEPS_PREFIX}/lib/libprotobuf-lite.a' not found")
endif()

add_library(protobuf::libprotobuf-lite STATIC IMPORTED)
set_target_properties(protobuf::libprotobuf-lite PROPERTIES
  IMPORTED_LOCATION "${Q8_DEPS_PREFIX}/lib/libprotobuf-lite.a"
  INTERFACE_INCLUDE_DIRECTORIES "${Q8_DEPS_PREFIX}/include"
  INTERFACE_LINK_LIBRARIES Threads::Threads)

# protoc runs on the build machine (the toolchain file never searches the target root for
# programs). The generated code only compiles against the library of the same version.
find_program(Q8_PROTOC protoc REQUIRED)
execute_process(COMMAND ${Q8_PROTOC} --version OUTPUT_VARIABLE q8_protoc_version OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT q8_protoc_version STREQUAL "libprotoc 3.21.12")
  message(FATAL_ERROR "q8: ${Q8_PROTOC} is '${q8_protoc_version}'; the bundled protobuf-lite is 3.21.12")
endif()
add_executable(protobuf::protoc IMPORTED)
set_target_properties(protobuf::protoc PROPERTIES IMPORTED_LOCATION ${Q8_PROTOC})

# Headers of host packages (cpuinfo.h, stb/) without adding /usr/include, which would put the
# host's C library headers ahead of a cross compiler's own.
set(q8_host_include ${PROJECT_BINARY_DIR}/_host_include)
file(MAKE_DIRECTORY ${q8_host_include})
foreach(h cpuinfo.h stb)
  if(NOT EXISTS /usr/include/${h})
    message(FATAL_ERROR "q8: /usr/include/${h} not found; install libcpuinfo-dev and libstb-dev")
  endif()
  file(CREATE_LINK /usr/include/${h} ${q8_host_include}/${h} SYMBOLIC)
endforeach()

# Third-party code compiled into q8 keeps all its symbols hidden: none may leave libq8.so or the
# bundled libq8.a, where they could clash with a program's own copy.
add_library(q8_cpu_features STATIC ${CMAKE_CURRENT_LIST_DIR}/cpu_features.cpp)
target_include_directories(q8_cpu_features SYSTEM PUBLIC $<BUILD_INTERFACE:${q8_host_include}>)
add_library(q8_stb STATIC ${CMAKE_CURRENT_LIST_DIR}/stb_image.cpp)
target_include_directories(q8_stb SYSTEM PUBLIC $<BUILD_INTERFACE:${q8_host_include}>)
set_target_properties(q8_cpu_features q8_stb PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
# stb_image compiled as C++: its own code trips the project's warnings, so it gets none.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/stb_image.cpp PROPERTIES COMPILE_OPTIONS "-w")

add_library(PkgConfig::CPUINFO INTERFACE IMPORTED)
set_target_properties(PkgConfig::CPUINFO PROPERTIES INTERFACE_LINK_LIBRARIES q8_cpu_features)
add_library(PkgConfig::STB INTERFACE IMPORTED)
set_target_properties(PkgConfig::STB PROPERTIES INTERFACE_LINK_LIBRARIES q8_stb)
