// OutputGrid: how threads share a GEMM-shaped step. Every (row, panel) of the output is run
// exactly once whatever the thread count, rectangles start on row tiles, and the split follows
// the larger operand.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "runtime/plan_builder.h"
#include "runtime/thread_pool.h"

namespace {

using q8::rt::OutputGrid;

// Runs the grid's work on `threads` threads; returns how often each (panel, row) was run.
std::vector<int> coverage(const OutputGrid& grid, int threads) {
  q8::rt::ThreadPool pool(threads);
  std::vector<int> count(grid.panels * grid.rows, 0);
  std::mutex mu;
  pool.parallel_for(grid.work(), grid.mr, [&](size_t i0, size_t i1) {
    grid.split(i0, i1, [&](size_t m0, size_t m1, size_t n0, size_t n1) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_LT(m0, m1);
      EXPECT_LE(m1, grid.rows);
      EXPECT_LT(n0, n1);
      EXPECT_LE(n1, grid.panels);
      if (m1 != grid.rows) {
        EXPECT_EQ(m1 % grid.mr, 0u) << "a rectangle ends inside a row tile";
      }
      EXPECT_EQ(m0 % grid.mr, 0u) << "a rectangle starts inside a row tile";
      for (size_t n = n0; n < n1; ++n)
        for (size_t m = m0; m < m1; ++m) ++count[n * grid.rows + m];
    });
  });
  return count;
}

TEST(OutputGrid, EveryRowAndPanelRunsOnceAtAnyThreadCount) {
  for (size_t rows : {1, 5, 8, 49, 50, 196})
    for (size_t mr : {1, 6, 8})
      for (size_t panels : {1, 2, 3, 16})
        for (bool by_panels : {false, true}) {
          // Weights larger than the input and output together choose the split by panels.
          const OutputGrid grid(rows, mr, panels, 1, by_panels ? 0 : 1, by_panels ? 2 : 1);
          ASSERT_EQ(grid.by_panels, by_panels && panels > 1);
          for (int threads : {1, 2, 3, 5}) {
            const std::vector<int> count = coverage(grid, threads);
            for (size_t i = 0; i < count.size(); ++i)
              ASSERT_EQ(count[i], 1) << "rows " << rows << " mr " << mr << " panels " << panels << " by_panels "
                                     << by_panels << " threads " << threads << ": panel " << i / rows << " row "
                                     << i % rows;
          }
        }
}

TEST(OutputGrid, OneThreadRunsOneRectangle) {
  const OutputGrid grid(49, 8, 16, 1, 0, 2);
  int calls = 0;
  grid.split(0, grid.work(), [&](size_t m0, size_t m1, size_t n0, size_t n1) {
    ++calls;
    EXPECT_EQ(m0, 0u);
    EXPECT_EQ(m1, 49u);
    EXPECT_EQ(n0, 0u);
    EXPECT_EQ(n1, 16u);
  });
  EXPECT_EQ(calls, 1);
}

// resnet18's 7x7 layers over two threads: by panels each thread gets half the weights and all
// 49 rows, where by rows one got 4 tiles of 8 rows and the other 3.
TEST(OutputGrid, DeepLayerSplitsItsPanelsEvenly) {
  const OutputGrid grid(49, 8, 16, 7 * 7 * 512 + 49 * 9 * 8, 49 * 512, 512 * 4608);
  ASSERT_TRUE(grid.by_panels);
  q8::rt::ThreadPool pool(2);
  std::mutex mu;
  std::vector<std::vector<size_t>> seen;
  pool.parallel_for(grid.work(), grid.mr, [&](size_t i0, size_t i1) {
    grid.split(i0, i1, [&](size_t m0, size_t m1, size_t n0, size_t n1) {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back({m0, m1, n0, n1});
    });
  });
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& r : seen) {
    EXPECT_EQ(r[0], 0u);
    EXPECT_EQ(r[1], 49u);
    EXPECT_EQ(r[3] - r[2], 8u);
  }
}

// MobileNetV2's 1x1 expansion at 14x14, 64 -> 384 channels in int8: 24.6 KB of weights against
// 12.5 KB of input and 75 KB of output, which the depthwise step after it reads by pixels: rows.
TEST(OutputGrid, SmallExpansionSplitsItsRows) {
  const OutputGrid grid(196, 8, 12, 14 * 14 * 64 + 196 * 8, 196 * 384, 384 * 64 + 384 * 8);
  EXPECT_FALSE(grid.by_panels);
  EXPECT_EQ(grid.work(), 196u);
}

}  // namespace
