#include "io/image.h"

#include <climits>
#include <cstring>
#include <memory>

#include "q8/error.h"

#include <stb/stb_image.h>

namespace q8 {

namespace {

enum class Format { Png, Jpeg, Bmp };

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}
uint32_t le16(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1]))
                                                                  << 8;
}

// The format from the content's signature, never from the file's name.
bool sniff(const std::string& b, Format& f) {
  if (b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0)
    f = Format::Png;
  else if (b.size() >= 3 && std::memcmp(b.data(), "\xff\xd8\xff", 3) == 0)
    f = Format::Jpeg;
  else if (b.size() >= 2 && std::memcmp(b.data(), "BM", 2) == 0)
    f = Format::Bmp;
  else
    return false;
  return true;
}

// The least number of bytes a well-formed file of this format and header must hold, so a header
// that declares more than its data (stb pads missing data with zeros) is refused before
// decoding. Returns "" when the file can hold what it declares, else the reason.
std::string check_payload(Format f, const std::string& b, int64_t w, int64_t h) {
  const int64_t size = static_cast<int64_t>(b.size());
  if (f == Format::Bmp) {
    // Uncompressed rows are padded to 4 bytes; stb decodes only the uncompressed forms
    // (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS) and refuses the rest itself.
    if (b.size() < 30) return "truncated BMP header";
    const uint32_t offset = le32(b, 10), dib = le32(b, 14);
    uint32_t bpp, compression = 0;
    if (dib == 12) {
      bpp = le16(b, 24);
    } else {
      if (b.size() < 34) return "truncated BMP header";
      bpp = le16(b, 28);
      compression = le32(b, 30);
    }
    if (compression != 0 && compression != 3 && compression != 6) return "";
    const int64_t stride = (w * bpp + 31) / 32 * 4;
    if (static_cast<int64_t>(offset) + stride * h > size)
      return "truncated BMP: " + std::to_string(w) + "x" + std::to_string(h) + " pixels need " +
             std::to_string(static_cast<int64_t>(offset) + stride * h) + " bytes, the file holds " +
             std::to_string(size);
    return "";
  }
  if (f == Format::Png) {
    // Deflate expands at most 1032:1; the filtered image is h rows of 1 + ceil(w * bits / 8).
    if (b.size() < 29) return "truncated PNG header";
    const int depth = static_cast<uint8_t>(b[24]), color = static_cast<uint8_t>(b[25]);
    const int samples = color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1;
    const int64_t raw = h * (1 + (w * samples * depth + 7) / 8);
    if (raw > 1032 * size + 4096)
      return "a " + std::to_string(w) + "x" + std::to_string(h) + " PNG cannot be encoded in " + std::to_string(size) +
             " bytes";
    return "";  // stb refuses a PNG whose data decompresses short ("not enough pixels")
  }
  // JPEG: every 8x8 block of every component costs at least two bits (a DC code and an
  // end-of-block code), so a file holds at most 256 pixels per byte.
  if (w * h > 256 * size + 65536)
    return "a " + std::to_string(w) + "x" + std::to_string(h) + " JPEG cannot be encoded in " + std::to_string(size) +
           " bytes";
  // The last scan must end in an end-of-image marker: entropy-coded data never holds 0xFF 0xD9
  // (0xFF is stuffed as 0xFF 0x00), so a file cut short inside a scan has none after it.
  size_t sos = std::string::npos;
  for (size_t i = b.size(); i-- > 1;)
    if (static_cast<uint8_t>(b[i - 1]) == 0xff && static_cast<uint8_t>(b[i]) == 0xda) {
      sos = i;
      break;
    }
  if (sos == std::string::npos) return "JPEG without image data (no start-of-scan marker)";
  for (size_t i = sos + 1; i + 1 < b.size(); ++i)
    if (static_cast<uint8_t>(b[i]) == 0xff && static_cast<uint8_t>(b[i + 1]) == 0xd9) return "";
  return "truncated JPEG (no end-of-image marker after the last scan)";
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& name, int channels) {
  Format f;
  if (!sniff(bytes, f)) throw Error(name + ": not a PNG, JPEG or BMP image");
  if (bytes.size() > static_cast<size_t>(INT32_MAX)) throw Error(name + ": image file too large");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(data, len, &w, &h, &comp))
    throw Error(name + ": cannot read the image header (" + std::string(stbi_failure_reason()) + ")");
  if (w <= 0 || h <= 0) throw Error(name + ": the image header declares no pixels");
  if (static_cast<int64_t>(w) * h > kMaxImagePixels)
    throw Error(name + ": the image header declares " + std::to_string(w) + "x" + std::to_string(h) +
                " pixels, more than the limit of " + std::to_string(kMaxImagePixels));
  const std::string bad = check_payload(f, bytes, w, h);
  if (!bad.empty()) throw Error(name + ": " + bad);
  int dw = 0, dh = 0, got = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(data, len, &dw, &dh, &got, channels),
                                               stbi_image_free);
  if (!px) throw Error(name + ": cannot decode the image (" + std::string(stbi_failure_reason()) + ")");
  if (dw != w || dh != h) throw Error(name + ": the decoded size differs from the header's");
  Image img;
  img.width = w;
  img.height = h;
  img.channels = channels;
  img.pixels.assign(px.get(), px.get() + static_cast<size_t>(w) * h * channels);
  return img;
}

}  // namespace q8
