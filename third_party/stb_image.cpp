// stb_image's implementation, compiled into q8 for the dependency-light build (Q8_BUNDLED_DEPS)
// instead of linking Debian's libstb.so: the header (libstb-dev) carries the whole decoder.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
