// Calibration images: PNG, JPEG and BMP decoded from memory (Debian's libstb), with the header
// checked before anything is decoded so a lying file cannot make q8 allocate gigabytes or hand
// back pixels the file never held.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace q8 {

// The most pixels one calibration image may declare (8192 x 8192).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
// The largest image file read.
constexpr int64_t kMaxImageFileBytes = int64_t{256} << 20;

struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // interleaved, height x width x channels
};

// Decodes `bytes` to `channels` (1 or 3) interleaved 8-bit channels. Throws q8::Error("NAME: ...")
// when the content is not a PNG, JPEG or BMP (whatever the file is called), when the header
// declares more than kMaxImagePixels or more pixels than a file of this size can encode, or
// when the pixel data is truncated.
Image decode_image(const std::string& bytes, const std::string& name, int channels);

}  // namespace q8
