// A kernel entry of a table: the function pointer together with the identifier it was taken
// from, so every name that `q8 info` and `q8 analyze` print is one that exists in kernels/
// (a function, or for a template instantiation the constexpr alias that names it).
#pragma once

namespace q8::kern {

template <class F>
struct Named;

template <class R, class... A>
struct Named<R (*)(A...)> {
  R (*fn)(A...) = nullptr;
  const char* name = "";

  R operator()(A... a) const { return fn(a...); }
  explicit operator bool() const { return fn != nullptr; }
};

}  // namespace q8::kern

// Table entry from an identifier: the name is the identifier's own spelling.
#define Q8_KERNEL(f) \
  { f, #f }
