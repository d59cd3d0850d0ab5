// What one plan step costs the thread pool: ThreadPool::parallel_for over an empty body (the
// publish, every worker's wake-up and the wait for the last one) and over a body of fixed work
// per thread, from one thread up to this machine's hardware threads. A plan runs about a hundred
// steps per MobileNetV2 inference, so a microsecond here is a tenth of a millisecond there.
//
//   q8_bench_thread_pool                            # every thread count up to the CPU's
//   q8_bench_thread_pool --benchmark_filter=empty
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

// A body that only records its chunk, so that the compiler keeps the call.
void bm_step_empty(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  q8::rt::ThreadPool pool(threads);
  const size_t n = kItemsPerThread * static_cast<size_t>(threads);
  std::vector<uint64_t> seen(static_cast<size_t>(threads) * 8);  // one cache line per chunk
  const auto body = [&](size_t b, size_t) { seen[b / kItemsPerThread * 8] += 1; };
  for (auto _ : state) pool.parallel_for(n, kItemsPerThread, body);
  benchmark::DoNotOptimize(seen.data());
}

// Each chunk runs a chain of range(1) dependent multiply-adds on its own thread (2000: about
// 2.5 us on a 3 GHz core), as short as MobileNetV2's smaller steps at 16 threads: the time over
// the one-thread figure is what the pool adds.
void bm_step_work(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const uint64_t rounds = static_cast<uint64_t>(state.range(1));
  q8::rt::ThreadPool pool(threads);
  const size_t n = kItemsPerThread * static_cast<size_t>(threads);
  std::vector<uint64_t> out(static_cast<size_t>(threads) * 8);
  const auto body = [&](size_t b, size_t) {
    uint64_t x = b + 1;
    for (uint64_t r = 0; r < rounds; ++r) x = x * 6364136223846793005u + 1442695040888963407u;
    out[b / kItemsPerThread * 8] = x;
  };
  for (auto _ : state) pool.parallel_for(n, kItemsPerThread, body);
  benchmark::DoNotOptimize(out.data());
}

void thread_counts(benchmark::internal::Benchmark* b, int64_t rounds) {
  const int64_t hw = std::max<int64_t>(1, std::thread::hardware_concurrency());
  for (int64_t t = 1; t <= hw; t *= 2) rounds ? b->Args({t, rounds}) : b->Arg(t);
  if ((hw & (hw - 1)) != 0) rounds ? b->Args({hw, rounds}) : b->Arg(hw);  // not a power of two
}

BENCHMARK(bm_step_empty)->ArgName("threads")->Apply([](auto* b) { thread_counts(b, 0); }) -> UseRealTime();
BENCHMARK(bm_step_work)->ArgNames({"threads", "rounds"})->Apply([](auto* b) {
                                                          thread_counts(b, 2000);
                                                        }) -> UseRealTime();

}  // namespace

BENCHMARK_MAIN();
