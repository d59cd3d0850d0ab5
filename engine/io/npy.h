// .npy parsing, exposed privately so tests and fuzzers can feed it bytes without a file.
#pragma once

#include <cstddef>
#include <string>

#include "q8/q8.h"

namespace q8 {

// Parses a whole .npy file held in memory (versions 1.0, 2.0 and 3.0; little-endian float32,
// float64, int64, int32, uint8 and int8, converted to float32). `name` names the file in errors.
// Throws q8::Error on anything else: big-endian or Fortran-order data, object arrays, a malformed
// or oversized (> 64 KiB) header, overflowing shapes, truncated data or trailing bytes.
Tensor parse_npy(const void* data, size_t size, const std::string& name);

}  // namespace q8
