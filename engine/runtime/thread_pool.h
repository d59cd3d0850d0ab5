// A fixed pool of worker threads owned by a session. parallel_for splits [0, n) into contiguous
// chunks, one per thread; the split never changes what a kernel computes for an element, so
// results do not depend on the thread count. No allocation per call.
//
// A plan runs many short steps back to back (MobileNetV2: ~100 steps in 1.5 ms), so waking
// sleeping threads for each one would cost more than the work. Workers therefore spin on an
// atomic generation counter for a while after each step, and only then sleep on a condition
// variable; the caller spins on an atomic count of unfinished chunks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace q8::rt {

class ThreadPool {
 public:
  // Throws q8::Error when a worker thread cannot be started.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls fn(begin, end) over disjoint chunks covering [0, n); chunk edges are multiples of
  // `align` (except the last). Runs on the calling thread too; returns when all are done.
  void parallel_for(size_t n, size_t align, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker(int index);
  void stop_workers();
  void run_chunk(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, align_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;  // guarded by mu_
};

}  // namespace q8::rt
