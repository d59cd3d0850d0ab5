// libFuzzer target: arbitrary bytes as an .npy file. parse_npy must return a tensor whose
// element count matches its shape, or throw q8::Error; anything else is a bug.
#include <cstddef>
#include <cstdint>

#include "io/npy.h"
#include "q8/q8.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    q8::Tensor t = q8::parse_npy(data, size, "fuzz.npy");
    int64_t n = 1;
    for (int64_t d : t.shape()) {
      if (d < 0 || __builtin_mul_overflow(n, d, &n)) __builtin_trap();
    }
    if (n != t.numel()) __builtin_trap();
    // Touch every element so a short buffer shows up under ASan.
    volatile float sink = 0;
    for (int64_t i = 0; i < t.numel(); ++i) sink = sink + t.data()[i];
    (void)sink;
  } catch (const q8::Error&) {
  }
  return 0;
}
