#include "q8/error.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace q8 {

namespace {

// The length of the well-formed UTF-8 sequence for a code point past U+009F that starts at
// s[i] and ends before n (shortest form, no surrogates, at most U+10FFFF), or 0.
size_t utf8_printable_length(const std::string& s, size_t i, size_t n) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (len == 0 || c > 0xf4 || i + len > n) return 0;
  uint32_t cp = c & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (d & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp <= 0x9f) return 0;  // surrogates, C1 controls
  return len;
}

}  // namespace

std::string printable(const std::string& s, size_t max_bytes) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  const size_t n = std::min(s.size(), max_bytes);
  for (size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c >= 0x80 ? utf8_printable_length(s, i, n) : (c < 0x20 || c == 0x7f) ? 0 : 1;
    if (len) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    }
  }
  if (s.size() > n) out += "...";
  return out;
}

std::string json_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
      ++i;
    } else if (const size_t len = c >= 0x80 ? utf8_printable_length(s, i, s.size()) : 0) {
      out.append(s, i, len);
      i += len;
    } else {
      // Controls as \u00XX; a C1 control keeps its code point; a byte that is not UTF-8 is U+FFFD.
      uint32_t cp = c;
      size_t used = 1;
      if (c == 0xc2 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xe0) == 0x80)
        cp = static_cast<unsigned char>(s[i + 1]), used = 2;
      else if (c >= 0x80)
        cp = 0xfffd;
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
      i += used;
    }
  }
  return out;
}

}  // namespace q8
