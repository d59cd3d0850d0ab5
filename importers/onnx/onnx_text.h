// Names read from ONNX files, made safe for q8's one-line error messages (importer and writer).
#pragma once

#include <string>

namespace q8::onnx {

// Escapes control characters as \xNN and caps the length at 200 characters.
inline std::string printable(const std::string& s) {
  std::string out;
  const size_t cap = 200;
  for (size_t i = 0; i < s.size() && i < cap; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > cap) out += "...";
  return out;
}

// 'name', printable.
inline std::string quote(const std::string& s) { return "'" + printable(s) + "'"; }

}  // namespace q8::onnx
