#include "runtime/thread_pool.h"

#include <algorithm>
#include <exception>
#include <string>

#include "q8/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define Q8_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define Q8_CPU_RELAX() asm volatile("yield")
#else
#define Q8_CPU_RELAX() std::this_thread::yield()
#endif

namespace q8::rt {

namespace {
// How long a worker spins for the next step before sleeping: about 100 us of pause
// instructions, several plan steps' worth.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int threads) {
  try {
    const size_t workers = static_cast<size_t>(std::max(threads, 1) - 1);
    done_.reset(new Done[workers]);
    workers_.reserve(workers);
    for (int i = 1; i < std::max(threads, 1); ++i) workers_.emplace_back(&ThreadPool::worker, this, i);
  } catch (const std::exception& e) {
    // A process or memory limit: stop the workers already started (the destructor does not run
    // for a constructor that throws) and report it.
    stop_workers();
    throw Error("cannot start " + std::to_string(threads) + " threads: " + e.what());
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() {
  stop_.store(true, std::memory_order_relaxed);
  wake();
  for (std::thread& t : workers_) t.join();
}

// Bumps the generation and wakes sleeping workers. A worker counts itself in sleepers_ before it
// checks the generation a last time (under mu_), and this reads sleepers_ after the bump, both
// sequentially consistent: either the worker sees the new generation or this sees the sleeper
// and locks mu_, which the worker holds until it waits, so the notify cannot come too early.
// Returns the new generation.
uint64_t ThreadPool::wake() {
  const uint64_t generation = generation_.fetch_add(1, std::memory_order_seq_cst) + 1;
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    start_cv_.notify_all();
  }
  return generation;
}

void ThreadPool::run_chunk(int index) {
  // Chunk i covers blocks [i*B/T, (i+1)*B/T) of `align` elements: balanced and deterministic.
  const size_t blocks = (n_ + align_ - 1) / align_;
  const size_t t = static_cast<size_t>(size());
  const size_t b0 = blocks * static_cast<size_t>(index) / t, b1 = blocks * (static_cast<size_t>(index) + 1) / t;
  const size_t begin = std::min(n_, b0 * align_), end = std::min(n_, b1 * align_);
  if (begin < end) (*fn_)(begin, end);
}

void ThreadPool::parallel_for(size_t n, size_t align, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n <= align) {
    fn(0, n);
    return;
  }
  fn_ = &fn;
  n_ = n;
  align_ = std::max<size_t>(align, 1);
  const uint64_t generation = wake();
  run_chunk(0);
  // Wait for the other chunks (acquire: their writes are then visible here); past a short spin,
  // give the core away: on a machine with more runnable threads than cores the worker may be
  // waiting for this one. The spin budget is shared by all workers, as one wait.
  int spins = 0;
  for (size_t w = 0; w < workers_.size(); ++w) {
    while (done_[w].generation.load(std::memory_order_acquire) != generation) {
      if (spins < kSpinIterations) {
        ++spins;
        Q8_CPU_RELAX();
      } else {
        std::this_thread::yield();
      }
    }
  }
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin for the next job, then sleep.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      Q8_CPU_RELAX();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      start_cv_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_relaxed);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    run_chunk(index);
    done_[static_cast<size_t>(index) - 1].generation.store(seen, std::memory_order_release);
  }
}

}  // namespace q8::rt
