// A fixed pool of worker threads owned by a session. parallel_for splits [0, n) into contiguous
// chunks, one per thread; the split never changes what a kernel computes for an element, so
// results do not depend on the thread count. No allocation per call.
//
// A plan runs many short steps back to back (MobileNetV2: ~100 steps in 1.5 ms), so waking
// sleeping threads for each one would cost more than the work. Workers therefore spin on an
// atomic generation counter for a while after each step, and only then sleep on a condition
// variable; the caller spins until each worker has reported the step done. Publishing a step
// takes no lock unless a worker sleeps, and no two threads write the same cache line in it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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
  // Two cores that write one cache line take turns owning it: the job (written once per step, read
  // by every worker), each worker's completion (written by that worker, read by the caller) and
  // the sleep count each get lines of their own. 128 bytes: the pair of lines that Intel's
  // adjacent-line prefetcher fetches together, and Apple's line size.
  static constexpr size_t kLine = 128;
  struct alignas(kLine) Done {
    std::atomic<uint64_t> generation{0};  // the last generation this worker finished
  };

  void worker(int index);
  uint64_t wake();
  void stop_workers();
  void run_chunk(int index);

  // The job: written by parallel_for before it bumps generation_, read by workers after they see
  // the new generation, and not written again before every worker has reported that generation
  // done.
  alignas(kLine) const std::function<void(size_t, size_t)>* fn_ = nullptr;
  size_t n_ = 0, align_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  alignas(kLine) std::atomic<int> sleepers_{0};  // workers waiting on start_cv_ (or about to)
  std::mutex mu_;                                // only for workers going to sleep and for waking them
  std::condition_variable start_cv_;
  std::unique_ptr<Done[]> done_;  // one per worker
  std::vector<std::thread> workers_;
};

}  // namespace q8::rt
