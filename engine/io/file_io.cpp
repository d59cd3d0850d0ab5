#include "io/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

#include "q8/error.h"

namespace q8 {

namespace {

[[noreturn]] void write_fail(const std::string& path, int err) {
  throw Error(path + ": cannot write file (" + std::strerror(err ? err : EIO) + ")");
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

int write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t r = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;
    done += static_cast<size_t>(r);
  }
  return 0;
}

// What a file is, for messages: "a FIFO", "a folder", ...
std::string file_kind(unsigned mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "a special file";
}

// One output file's plan: replaced through a temporary, or written in place (a device or FIFO).
struct Target {
  std::string path, tmp;
  const std::string* bytes = nullptr;
  bool in_place = false;
  bool has_old = false;
  struct stat old {};
};

Target plan_target(const std::string& path, const std::string& bytes) {
  if (path.empty()) throw Error("cannot write a file to an empty path");
  Target t;
  t.path = path;
  t.bytes = &bytes;
  // stat follows a link to what the user named; the rename below replaces a link itself.
  if (::stat(path.c_str(), &t.old) == 0) {
    t.has_old = true;
    if (S_ISCHR(t.old.st_mode) || S_ISFIFO(t.old.st_mode))
      t.in_place = true;
    else if (!S_ISREG(t.old.st_mode))
      throw Error(path + ": cannot write file (it is " + file_kind(t.old.st_mode) + ")");
  } else if (errno != ENOENT) {
    write_fail(path, errno);
  }
  return t;
}

// A temporary beside the target with a short name, so any legal file name still fits
// (NAME_MAX counts the whole last component): "<folder>/.q8-XXXXXXXX". O_EXCL|O_NOFOLLOW never
// opens a file or link someone else put there.
int open_temporary(Target& t) {
  static std::atomic<unsigned> counter{0};
  const size_t slash = t.path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : t.path.substr(0, slash + 1);
  for (int attempt = 0; attempt < 100; ++attempt) {
    char name[32];
    const unsigned mix = static_cast<unsigned>(::getpid()) * 2654435761u ^ (counter++ * 40503u);
    std::snprintf(name, sizeof name, ".q8-%08x", mix);
    const std::string tmp = dir + name;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd >= 0) {
      t.tmp = tmp;  // ours from here on: removed on failure
      return fd;
    }
    if (errno != EEXIST) write_fail(t.path, errno);
  }
  write_fail(t.path, EEXIST);
}

// Writes the temporary whole and synced, with the replaced file's permission bits; 0 or errno.
int write_temporary(Target& t) {
  Fd f(open_temporary(t));
  int err = write_all(f.fd, *t.bytes);
  if (!err && t.has_old) {
    if (::fchmod(f.fd, t.old.st_mode & 07777) != 0) err = errno;
    // As root, keep the owner too; elsewhere this fails harmlessly and the writer owns the file.
    if (!err && ::geteuid() == 0 && ::fchown(f.fd, t.old.st_uid, t.old.st_gid) != 0) err = errno;
  }
  if (!err && ::fsync(f.fd) != 0 && errno != EINVAL && errno != EROFS) err = errno;
  const int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0 && !err && errno != EINTR) err = errno;
  return err;
}

// A device or FIFO, written where it is. O_NONBLOCK keeps a FIFO without a reader from hanging
// the open (it fails with ENXIO instead); writes then block as usual.
int write_in_place(const Target& t) {
  Fd f(::open(t.path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) return errno;
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return errno;
  if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) return EEXIST;  // swapped since plan_target
  const int flags = ::fcntl(f.fd, F_GETFL);
  if (flags < 0 || ::fcntl(f.fd, F_SETFL, flags & ~O_NONBLOCK) != 0) return errno;
  return write_all(f.fd, *t.bytes);
}

}  // namespace

std::string read_regular_file(const std::string& path, int64_t max_bytes) {
  auto sys_fail = [&](const char* what) { throw Error(path + ": " + what + " (" + std::strerror(errno) + ")"); };
  Fd f(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (f.fd < 0) sys_fail("cannot open file");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) sys_fail("cannot stat file");
  if (!S_ISREG(st.st_mode)) throw Error(path + ": not a regular file (it is " + file_kind(st.st_mode) + ")");
  if (st.st_size > max_bytes)
    throw Error(path + ": file of " + std::to_string(st.st_size) + " bytes exceeds the limit of " +
                std::to_string(max_bytes) + " bytes");
  std::string bytes;
  try {
    bytes.resize(static_cast<size_t>(st.st_size));
  } catch (const std::bad_alloc&) {
    throw Error(path + ": out of memory reading " + std::to_string(st.st_size) + " bytes");
  }
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r = ::read(f.fd, &bytes[got], bytes.size() - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      sys_fail("cannot read file");
    }
    if (r == 0) throw Error(path + ": file shrank while it was read");
    got += static_cast<size_t>(r);
  }
  return bytes;
}

void write_file_atomic(const std::string& path, const std::string& bytes) { write_files_atomic({{path, bytes}}); }

void write_files_atomic(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<Target> targets;
  for (const auto& [path, bytes] : files) targets.push_back(plan_target(path, bytes));
  // Until the first rename, a failure anywhere leaves every path as it was.
  try {
    for (Target& t : targets)
      if (!t.in_place)
        if (const int err = write_temporary(t)) write_fail(t.path, err);
    for (const Target& t : targets) {
      if (!t.in_place) continue;
      const int err = write_in_place(t);
      if (err == ENXIO) throw Error(t.path + ": cannot write file (a FIFO with no reader)");
      if (err) write_fail(t.path, err);
    }
  } catch (...) {
    for (const Target& t : targets)
      if (!t.tmp.empty()) ::unlink(t.tmp.c_str());
    throw;
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    const Target& t = targets[i];
    if (t.in_place || std::rename(t.tmp.c_str(), t.path.c_str()) == 0) continue;
    const int err = errno;
    for (size_t j = i; j < targets.size(); ++j)
      if (!targets[j].tmp.empty()) ::unlink(targets[j].tmp.c_str());
    write_fail(t.path, err);
  }
}

}  // namespace q8
