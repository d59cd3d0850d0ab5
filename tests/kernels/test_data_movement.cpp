// The portable kernels that move bytes without arithmetic (kernels/f32_misc.h): strided_copy
// (Slice, Transpose) and channel_shuffle (ShuffleNet), each against the definition written out
// here, over uneven splits of their rows as threads would run them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/f32_misc.h"

namespace q8::kern {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Boundaries splitting [0, n) into three uneven ranges (some empty when n < 3).
std::vector<size_t> thirds(size_t n) { return {0, n / 3, std::min(n, n / 3 + n / 2 + 1), n}; }

// Every group count, channel count and element size, over three uneven ranges of blocks: output
// channel i * group + j of each block in the range holds input channel j * per_group + i, byte
// for byte, and no byte outside the range is written.
TEST(ChannelShuffle, MatchesTheDefinition) {
  uint32_t seed = 1;
  for (size_t group : {1, 2, 3, 4, 8})
    for (size_t per_group : {1, 2, 3, 7, 16, 29, 58, 116})
      for (size_t bytes : {1, 2, 4, 12, 49 * 4})
        for (size_t blocks : {1, 5}) {
          SCOPED_TRACE(std::to_string(group) + " groups of " + std::to_string(per_group) + ", " +
                       std::to_string(bytes) + " bytes, " + std::to_string(blocks) + " blocks");
          const size_t C = group * per_group;
          const std::vector<uint8_t> in = random_bytes(blocks * C * bytes, seed++);
          const std::vector<size_t> cut = thirds(blocks);
          for (size_t k = 0; k + 1 < cut.size(); ++k) {
            // Each range alone: its blocks as defined, every other byte untouched.
            std::vector<uint8_t> out(in.size(), 0xAB);
            channel_shuffle(group, per_group, bytes, in.data(), out.data(), cut[k], cut[k + 1]);
            for (size_t o = 0; o < blocks; ++o) {
              if (o < cut[k] || o >= cut[k + 1]) {
                for (size_t b = o * C * bytes; b < (o + 1) * C * bytes; ++b) ASSERT_EQ(out[b], 0xAB) << "block " << o;
                continue;
              }
              for (size_t i = 0; i < per_group; ++i)
                for (size_t j = 0; j < group; ++j)
                  ASSERT_EQ(0, std::memcmp(&out[(o * C + i * group + j) * bytes],
                                           &in[(o * C + j * per_group + i) * bytes], bytes))
                      << "block " << o << ", output channel " << i * group + j;
            }
          }
        }
}

// Four-byte elements go through float registers: NaN payloads, signed zeros and denormals keep
// every bit.
TEST(ChannelShuffle, FloatsKeepEveryBit) {
  const uint32_t patterns[] = {0x7FC00001u, 0xFFA5A5A5u, 0x7F800001u, 0x80000000u, 0x00000001u, 0x807FFFFFu};
  std::vector<uint32_t> in(2 * 3 * 6);
  for (size_t k = 0; k < in.size(); ++k) in[k] = patterns[k % 6] + static_cast<uint32_t>(k / 6);
  std::vector<uint32_t> out(in.size());
  channel_shuffle(2, 18, 4, reinterpret_cast<const uint8_t*>(in.data()), reinterpret_cast<uint8_t*>(out.data()), 0, 1);
  for (size_t i = 0; i < 18; ++i)
    for (size_t j = 0; j < 2; ++j) ASSERT_EQ(out[i * 2 + j], in[j * 18 + i]);
}

// A transpose of [2,3,5,4] by (0,2,1,3) (its axes unmerged), and a slice with negative and
// skipping strides, each over three uneven ranges of output rows.
TEST(StridedCopy, MatchesTheDefinition) {
  const std::vector<uint8_t> in = random_bytes(2 * 3 * 5 * 4 * 4, 7);
  for (size_t elem : {1, 4}) {
    SCOPED_TRACE(std::to_string(elem) + "-byte elements");
    // Transpose: out [2,5,3,4], out(n,h,c,w) = in(n,c,h,w).
    const int64_t dims[] = {2, 5, 3, 4}, strides[] = {60, 4, 20, 1};
    std::vector<uint8_t> out(2 * 60 * elem);
    const std::vector<size_t> cut = thirds(2 * 5 * 3);
    for (size_t k = 0; k + 1 < cut.size(); ++k)
      strided_copy(4, dims, strides, elem, in.data(), out.data(), cut[k], cut[k + 1]);
    size_t at = 0;
    for (size_t n = 0; n < 2; ++n)
      for (size_t h = 0; h < 5; ++h)
        for (size_t c = 0; c < 3; ++c)
          for (size_t w = 0; w < 4; ++w, at += elem)
            ASSERT_EQ(0, std::memcmp(&out[at], &in[(((n * 3 + c) * 5 + h) * 4 + w) * elem], elem));
    // Slice of [2,3,5,4]: channels 2, 0 (step -2), rows 1, 4 (step 3), columns reversed.
    const int64_t sdims[] = {2, 2, 2, 4}, sstrides[] = {60, -40, 12, -1};
    const size_t base = (2 * 20 + 1 * 4 + 3) * elem;
    std::vector<uint8_t> s(2 * 16 * elem);
    const std::vector<size_t> scut = thirds(2 * 2 * 2);
    for (size_t k = 0; k + 1 < scut.size(); ++k)
      strided_copy(4, sdims, sstrides, elem, in.data() + base, s.data(), scut[k], scut[k + 1]);
    at = 0;
    for (size_t n = 0; n < 2; ++n)
      for (size_t c : {2, 0})
        for (size_t h : {1, 4})
          for (size_t w = 4; w-- > 0; at += elem)
            ASSERT_EQ(0, std::memcmp(&s[at], &in[(((n * 3 + c) * 5 + h) * 4 + w) * elem], elem));
  }
}

}  // namespace
}  // namespace q8::kern
