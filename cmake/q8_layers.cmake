# Each layer of q8 is a CMake target with an include root of its own: a folder in the build tree
# holding one link, named after the layer, to the layer's source folder. A target sees the headers
# of the layers it links and no others, so `#include "runtime/plan.h"` in a layer that may not use
# the runtime fails to compile; scripts/check_walls.sh states the same walls for review.
function(q8_layer_include_root target name dir)
  set(root ${PROJECT_BINARY_DIR}/include_roots/${target})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${dir} ${root}/${name} SYMBOLIC)
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${root}>)
endfunction()
