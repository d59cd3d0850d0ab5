// A fixed pool of worker threads owned by a session. parallel_for splits [0, n) into contiguous
// chunks, one per thread; the split never changes what a kernel computes for an element, so
// results do not depend on the thread count. No allocation per call.
//
// A plan runs many short steps back to back (MobileNetV2: ~100 steps in 1.5 ms), so waking
// sleeping threads for each one would cost more than the work. Workers therefore spin on an
// atomic generation counter for a while after each step, and only then sleep on a condition
// variable; the caller spins on an atomic count of unfinished chunks. Publishing a step takes no
// lock unless a worker sleeps.
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
  void wake();
  void stop_workers();
  void run_chunk(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;  // only for workers going to sleep and for waking them
  std::condition_variable start_cv_;
  // The job: written by parallel_for before it bumps generation_, read by workers after they see
  // the new generation, and not written again before pending_ is back to 0.
  const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, align_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};  // workers waiting on start_cv_ (or about to)
  std::atomic<bool> stop_{false};
};

}  // namespace q8::rt
