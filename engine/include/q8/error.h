// q8::Error: every failure q8 reports (bad file, unsupported op, wrong input, unusable CPU path).
// what() is one line naming the file, the node and its op where they are known, e.g.
//   "model.onnx: node '/3/Conv' (Conv): weight has 2 dims, expected 4"
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace q8 {

// `s` made safe to print on a terminal: C0 control bytes, DEL, C1 controls (U+0080-U+009F) and
// bytes that are not valid UTF-8 become \xNN; at most `max_bytes` bytes of `s` are kept, then
// "...". Names read from a model or a file system go through this wherever they are printed.
std::string printable(const std::string& s, size_t max_bytes = std::string::npos);
// `s` as the inside of a JSON string literal that is valid UTF-8 and printable: quotes and
// backslashes escaped, controls (C0, DEL, C1) as \u00XX, bytes that are not UTF-8 as \ufffd.
std::string json_escape(const std::string& s);

class Error : public std::runtime_error {
 public:
  // The message is made printable, so a name taken from a file can neither break the one-line
  // form nor send escape sequences to a terminal, whichever layer raised it.
  explicit Error(const std::string& what) : std::runtime_error(printable(what)) {}
};

}  // namespace q8
