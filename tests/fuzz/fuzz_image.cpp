// libFuzzer target: arbitrary bytes as a calibration image (q8::decode_image).
//
// Every input must decode to exactly width x height x channels pixels within the pixel cap, or be
// refused with q8::Error. The first byte picks 1 or 3 channels. A sanitizer report, a leak, an
// allocation over libFuzzer's -malloc_limit_mb (the header checks must refuse a lying file before
// stb allocates for it) or a timeout is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/image.h"
#include "q8/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (size_t{1} << 20)) return 0;
  const int channels = data[0] & 1 ? 3 : 1;
  const std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const q8::Image img = q8::decode_image(bytes, "fuzz.png", channels);
    const int64_t pixels = static_cast<int64_t>(img.width) * img.height;
    if (img.width <= 0 || img.height <= 0 || pixels > q8::kMaxImagePixels || img.channels != channels ||
        img.pixels.size() != static_cast<size_t>(pixels * channels))
      __builtin_trap();
  } catch (const q8::Error&) {
  }
  return 0;
}
