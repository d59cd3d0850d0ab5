// Balanced row tiles: rows [m0, m1) as ceil(n / mr) tiles whose sizes differ by at most one, so a
// remainder never leaves a tile of a single row running at a fraction of the kernel's speed (49
// rows with mr = 8 run as 7 tiles of 7, with mr = 6 as 4 of 6 and 5 of 5). Internal to kernels/.
#pragma once

#include <algorithm>
#include <cstddef>

namespace q8::kern {

struct RowTiles {
  size_t m0 = 0, count = 0, base = 0, rem = 0;  // the first `rem` tiles get base + 1 rows

  RowTiles(size_t m0_, size_t m1, size_t mr) : m0(m0_) {
    const size_t n = m1 > m0_ ? m1 - m0_ : 0;
    count = (n + mr - 1) / mr;
    if (count) base = n / count, rem = n % count;
  }
  size_t start(size_t i) const { return m0 + i * base + std::min(i, rem); }
  size_t rows(size_t i) const { return base + (i < rem ? 1 : 0); }
};

}  // namespace q8::kern
