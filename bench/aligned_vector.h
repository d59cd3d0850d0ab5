// AlignedVector<T>: a std::vector whose buffer is 64-byte aligned, as the engine's buffers are
// (runtime/plan.cpp's AlignedBuffer). A plain std::vector is 16-byte aligned, and a zmm load of
// packed weights that straddles two cache lines held the fp32 6x64 tile to about 0.6x the rate it
// has in the engine, so the benchmarks measure on this one.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const Aligned64<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const Aligned64<U>&) const {
    return false;
  }
};

template <class T>
using AlignedVector = std::vector<T, Aligned64<T>>;
