// Concurrency: one Model shared by several Sessions on several threads gives the same bytes as
// a single Session, for fp32 and int8, with one and several threads per session; quantize() of
// one model from two threads at once gives identical saved files. Runs under ThreadSanitizer in
// scripts/test_sanitizers.sh (build-tsan/, --gtest_filter='Concurrency*').
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "q8/q8.h"
#include "runtime/thread_pool.h"

namespace {

const std::string kSrc = Q8_SOURCE_DIR;

// Sanitizer builds run several times slower: fewer repetitions there keep the suite short.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kRepeats = 3;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
constexpr int kRepeats = 3;
#else
constexpr int kRepeats = 20;
#endif
#else
constexpr int kRepeats = 20;
#endif

// The first `n` samples of an [N, ...] tensor.
q8::Tensor head(const q8::Tensor& t, int64_t n) {
  std::vector<int64_t> shape = t.shape();
  n = std::min(n, shape[0]);
  const int64_t per = t.numel() / shape[0];
  shape[0] = n;
  return q8::Tensor(shape, std::vector<float>(t.data(), t.data() + n * per));
}

std::string bytes_of(const q8::Tensor& t) {
  return std::string(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
}

std::string saved_bytes(const q8::Model& m) {
  char name[] = "/tmp/q8_conc_XXXXXX";
  const int fd = mkstemp(name);
  if (fd >= 0) close(fd);
  const std::string path = std::string(name) + ".onnx";
  m.save(path);
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  std::remove(path.c_str());
  std::remove(name);
  return s.str();
}

struct Fixture {
  q8::Model fp32, int8;
  q8::Tensor input, calib;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture r;
    r.fp32 = q8::Model::load(kSrc + "/models/fashion_cnn.onnx");
    r.calib = head(q8::load_npy(kSrc + "/models/fashion_calib_256.npy"), 32);
    r.input = head(q8::load_npy(kSrc + "/models/fashion_test_500.npy"), 8);
    q8::QuantizeOptions o;
    o.method = q8::Calibration::MinMax;
    r.int8 = q8::quantize(r.fp32, {r.calib}, o);
    return r;
  }();
  return f;
}

// N threads, each with its own Session (threads_per_session workers) on the same Model, each
// running kRepeats times; every output must equal the single-session reference byte for byte.
void shared_model_many_sessions(const q8::Model& model, int sessions, int threads_per_session) {
  const q8::Tensor& x = fixture().input;
  std::string reference;
  {
    q8::Session s(model, q8::SessionOptions(1));
    reference = bytes_of(s.run({x})[0]);
  }
  // A second input (one sample) makes sessions re-plan mid-way: plans are per session.
  const q8::Tensor x1 = head(x, 1);
  std::string reference1;
  {
    q8::Session s(model, q8::SessionOptions(1));
    reference1 = bytes_of(s.run({x1})[0]);
  }
  std::atomic<int> mismatches{0}, errors{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < sessions; ++t) {
    threads.emplace_back([&, t] {
      try {
        q8::Session s(model, q8::SessionOptions(threads_per_session));
        while (!go.load()) std::this_thread::yield();
        std::vector<q8::Tensor> out;
        for (int r = 0; r < kRepeats; ++r) {
          const bool small = (r + t) % 3 == 2;
          s.run({small ? x1 : x}, out);
          if (out.size() != 1 || bytes_of(out[0]) != (small ? reference1 : reference)) ++mismatches;
        }
      } catch (const std::exception& e) {
        ++errors;
        ADD_FAILURE() << "thread " << t << ": " << e.what();
      }
    });
  }
  go = true;
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0) << "outputs differ from the single-session reference";
}

TEST(Concurrency, Fp32SessionsShareOneModel) { shared_model_many_sessions(fixture().fp32, 4, 1); }
TEST(Concurrency, Fp32MultiThreadedSessionsShareOneModel) { shared_model_many_sessions(fixture().fp32, 3, 2); }
TEST(Concurrency, Int8SessionsShareOneModel) {
  ASSERT_TRUE(fixture().int8.is_quantized());
  shared_model_many_sessions(fixture().int8, 4, 1);
}
TEST(Concurrency, Int8MultiThreadedSessionsShareOneModel) { shared_model_many_sessions(fixture().int8, 3, 3); }

// Models are cheap to copy and immutable: copies used from several threads, inspected and saved
// while sessions are being built from them, stay consistent.
TEST(Concurrency, ModelCopiesAreUsableFromManyThreads) {
  const q8::Model& m = fixture().int8;
  const std::string saved = saved_bytes(m);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      try {
        q8::Model copy = m;
        if (t == 0 && saved_bytes(copy) != saved) ++bad;
        if (t == 1 && copy.describe(2).empty()) ++bad;
        if (t == 2) {
          q8::Session s(copy);
          if (s.run({fixture().input})[0].numel() == 0) ++bad;
        }
      } catch (const std::exception& e) {
        ++bad;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// quantize() on the same fp32 model from two threads at once: both results save to the same
// bytes as a quantize() run alone (and multi-threaded calibration gives the same bytes too).
TEST(Concurrency, QuantizeFromTwoThreadsGivesIdenticalFiles) {
  const Fixture& f = fixture();
  const std::string alone = saved_bytes(f.int8);
  std::string got[2];
  std::thread threads[2];
  for (int t = 0; t < 2; ++t) {
    threads[t] = std::thread([&, t] {
      try {
        q8::QuantizeOptions o;
        o.method = q8::Calibration::MinMax;
        o.threads = t + 1;
        got[t] = saved_bytes(q8::quantize(f.fp32, {f.calib}, o));
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  ASSERT_FALSE(alone.empty());
  EXPECT_TRUE(got[0] == alone) << "quantize() from thread 0 saved different bytes";
  EXPECT_TRUE(got[1] == alone) << "quantize() from thread 1 saved different bytes";
}

// The thread pool alone: every index covered exactly once, for many sizes and alignments, from
// several pools driven by several threads at once.
TEST(Concurrency, ThreadPoolCoversEveryIndexExactlyOnce) {
  std::atomic<int> bad{0};
  auto drive = [&](int threads, int seed) {
    q8::rt::ThreadPool pool(threads);
    std::vector<int> hits;
    for (int it = 0; it < 200; ++it) {
      const size_t n = static_cast<size_t>((it * 37 + seed * 11) % 301);
      const size_t align = static_cast<size_t>(1 + (it + seed) % 17);
      hits.assign(n, 0);
      pool.parallel_for(n, align, [&](size_t b, size_t e) {
        if (b >= e || e > n) ++bad;
        for (size_t i = b; i < e; ++i) ++hits[i];  // chunks are disjoint: no atomics needed
      });
      for (int h : hits)
        if (h != 1) ++bad;
    }
  };
  std::vector<std::thread> drivers;
  for (int t = 0; t < 3; ++t) drivers.emplace_back(drive, t + 2, t);
  drive(1, 7);
  for (std::thread& th : drivers) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
