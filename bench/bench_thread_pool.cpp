// What one plan step costs the thread pool: ThreadPool::parallel_for with each chunk running a
// chain of `rounds` dependent multiply-adds on its own thread, from one thread up to this
// machine's hardware threads. rounds 0 is an empty step (the publish, every worker's wake-up and
// the wait for the last one); 2000 (about 2.5 us on a 3 GHz core) is as short as MobileNetV2's
// smaller steps at 16 threads, and its time over the one-thread figure is what the pool adds. A
// plan runs about a hundred steps per MobileNetV2 inference, so a microsecond here is a tenth of a
// millisecond there.
//
//   q8_bench_thread_pool                             # every thread count up to the CPU's
//   q8_bench_thread_pool --benchmark_filter=rounds:0
//
// The time reported is wall-clock time per step (UseRealTime): the caller's CPU time leaves out
// the workers.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

namespace {

// Items per thread: the chunks are equal, as in the convolution steps.
constexpr size_t kItemsPerThread = 64;

void bm_step(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const uint64_t rounds = static_cast<uint64_t>(state.range(1));
  q8::rt::ThreadPool pool(threads);
  const size_t n = kItemsPerThread * static_cast<size_t>(threads);
  std::vector<uint64_t> out(static_cast<size_t>(threads) * 8);  // one cache line per chunk
  const auto body = [&](size_t b, size_t) {
    uint64_t x = b + 1;
    for (uint64_t r = 0; r < rounds; ++r) x = x * 6364136223846793005u + 1442695040888963407u;
    out[b / kItemsPerThread * 8] = x;  // keeps the call
  };
  for (auto _ : state) pool.parallel_for(n, kItemsPerThread, body);
  benchmark::DoNotOptimize(out.data());
}

void thread_counts(benchmark::internal::Benchmark* b) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  for (int64_t rounds : {0, 2000}) {
    for (int64_t t = 1; t <= hw; t *= 2) b->Args({t, rounds});
    if ((hw & (hw - 1)) != 0) b->Args({hw, rounds});  // not a power of two
  }
}

BENCHMARK(bm_step)->ArgNames({"threads", "rounds"})->Apply(thread_counts)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
