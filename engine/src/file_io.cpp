#include "atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "q8/error.h"

namespace q8 {

namespace {
[[noreturn]] void path_fail(const std::string& path, int err) {
  throw Error(path + ": cannot write file (" + std::strerror(err ? err : EIO) + ")");
}
}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  if (path.empty()) throw Error("cannot write a file to an empty path");
  // The temporary's name is unique per process and call, and O_EXCL|O_NOFOLLOW never opens a
  // file or link someone else put there.
  static std::atomic<unsigned> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid())) + "." + std::to_string(counter++);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0 && errno != EEXIST) path_fail(path, errno);
  }
  if (fd < 0) path_fail(path, EEXIST);

  int err = 0;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<size_t>(r);
  }
  if (!err && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
  if (::close(fd) != 0 && !err && errno != EINTR) err = errno;
  if (!err && std::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    path_fail(path, err);
  }
}

}  // namespace q8
