// Writing a file whole or not at all: the bytes go to a fresh temporary file beside `path`
// (same file system), are synced, and the temporary is renamed over `path`. A failure removes
// the temporary and throws q8::Error naming `path`; `path` is then untouched.
#pragma once

#include <string>

namespace q8 {

void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace q8
