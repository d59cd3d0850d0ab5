# Deployable artefacts of the dependency-light build (Q8_BUNDLED_DEPS), under build/deploy:
#   lib/libq8.so  the runtime as a shared library: needs only libc, libm, libstdc++, libgcc_s and
#                 the loader, and exports only q8:: (cmake/q8.map);
#   lib/libq8.a   the runtime as one static archive: q8, protobuf-lite, the CPU check and stb
#                 partly linked into one object whose non-q8 symbols are made local, so a program
#                 links it with -lq8 alone, even next to its own, other protobuf;
#   bin/q8        the q8 program linked statically (tools/CMakeLists.txt): runs with nothing
#                 installed.
set(Q8_DEPLOY_DIR ${PROJECT_BINARY_DIR}/deploy)
set(q8_layers q8_quant q8_passes q8_runtime q8_io q8_ir q8_onnx q8_kernels)

# The ONNX messages and the importer are internal too: a program that uses ONNX's own generated
# classes must not meet q8's.
set_target_properties(q8_onnx PROPERTIES CXX_VISIBILITY_PRESET hidden)

file(GLOB q8_api_src CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/engine/api/*.cpp)
add_library(q8_shared SHARED ${q8_api_src})
q8_layer_include_root(q8_shared api ${PROJECT_SOURCE_DIR}/engine/api)
target_link_libraries(q8_shared PUBLIC q8_public_headers PRIVATE ${q8_layers} q8_warnings)
# --exclude-libs keeps the bundled archives' symbols out of the dynamic table; the version script
# drops everything else outside q8:: (q8's own layers are archives too, and their public classes,
# q8::Tensor and q8::Error among them, must stay exported); -z defs refuses a library with
# unresolved symbols.
target_link_options(q8_shared PRIVATE -Wl,--exclude-libs,libprotobuf-lite.a:libq8_cpu_features.a:libq8_stb.a
                    -Wl,--version-script=${PROJECT_SOURCE_DIR}/cmake/q8.map
                    -Wl,-z,defs -Wl,--gc-sections -Wl,-O1)
set_target_properties(q8_shared PROPERTIES OUTPUT_NAME q8 VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
                      LIBRARY_OUTPUT_DIRECTORY ${Q8_DEPLOY_DIR}/lib LINK_DEPENDS ${PROJECT_SOURCE_DIR}/cmake/q8.map)

# The static archive: every piece of q8 and its bundled dependencies, linked into one relocatable
# object, then hidden symbols made local (cmake/bundle_static.sh).
set(q8_bundle_inputs $<TARGET_FILE:q8>)
foreach(t ${q8_layers} q8_cpu_features q8_stb protobuf::libprotobuf-lite)
  list(APPEND q8_bundle_inputs $<TARGET_FILE:${t}>)
endforeach()
add_custom_command(
  OUTPUT ${Q8_DEPLOY_DIR}/lib/libq8.a
  COMMAND ${PROJECT_SOURCE_DIR}/cmake/bundle_static.sh ${CMAKE_LINKER} ${CMAKE_OBJCOPY} ${CMAKE_AR}
          ${Q8_DEPLOY_DIR}/lib/libq8.a ${q8_bundle_inputs}
  DEPENDS q8 ${q8_layers} q8_cpu_features q8_stb ${Q8_DEPS_PREFIX}/lib/libprotobuf-lite.a
          ${PROJECT_SOURCE_DIR}/cmake/bundle_static.sh
  COMMENT "Bundling libq8.a"
  VERBATIM)
add_custom_target(q8_bundle ALL DEPENDS ${Q8_DEPLOY_DIR}/lib/libq8.a)

# Headers next to the libraries, so deploy/ is what a user copies.
add_custom_command(TARGET q8_shared POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E copy_directory ${PROJECT_SOURCE_DIR}/engine/include ${Q8_DEPLOY_DIR}/include)

# Install: find_package(q8) gives q8::q8, the shared library, which needs no package of its
# dependencies; the bundled libq8.a goes next to it for -lq8 -static style linking.
set_target_properties(q8_shared PROPERTIES EXPORT_NAME q8)
install(TARGETS q8_shared q8_public_headers EXPORT q8Targets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${Q8_DEPLOY_DIR}/lib/libq8.a DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT q8Targets NAMESPACE q8:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/q8)
file(WRITE ${PROJECT_BINARY_DIR}/q8Config.cmake
  "# q8, dependency-light: the shared library needs only the C and C++ runtimes.\n"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/q8Targets.cmake\")\n")
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/q8ConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/q8Config.cmake ${PROJECT_BINARY_DIR}/q8ConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/q8)

enable_testing()
add_subdirectory(tests/deploy)
