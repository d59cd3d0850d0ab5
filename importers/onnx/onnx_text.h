// Names read from ONNX files, made safe for q8's one-line error messages (importer and writer).
#pragma once

#include <string>

#include "q8/error.h"

namespace q8::onnx {

// q8::printable, capped at 200 bytes: a name in a message need not be whole.
inline std::string printable(const std::string& s) { return q8::printable(s, 200); }

// 'name', printable.
inline std::string quote(const std::string& s) { return "'" + printable(s) + "'"; }

}  // namespace q8::onnx
