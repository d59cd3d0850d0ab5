// Every file q8 reads or writes goes through here, so every path gets the same rules.
//
// Reading: the file is opened non-blocking (a FIFO cannot hang the open), checked with fstat on
// that descriptor, and only a regular file of at most `max_bytes` is read. FIFOs, devices,
// sockets and folders are refused with an error naming the path and what it is.
//
// Writing: a regular file (or a path that does not exist yet) is replaced atomically: the bytes
// go to a short-named temporary beside it (same file system), are synced, and the temporary is
// renamed over the path, keeping the old file's permission bits. A character device or FIFO
// that already exists is written in place and never replaced (as `cp` does: `--output
// /dev/null` stays a device). Other special files are refused. Several files are written all or
// nothing: every temporary is written first, then the in-place writes, then all renames.
// A failure removes the temporaries and throws q8::Error naming the path.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace q8 {

// The whole of a regular file; throws q8::Error("PATH: ...") for anything else, for a file over
// `max_bytes`, or when it cannot be read.
std::string read_regular_file(const std::string& path, int64_t max_bytes);

void write_file_atomic(const std::string& path, const std::string& bytes);
// All of them or none of the regular files (in-place device writes cannot be undone, so they
// run only after every temporary is written).
void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace q8
