// libFuzzer target: arbitrary bytes as an fp32 ONNX model, pushed through the whole int8 path:
// load, calibrate and quantize on a few deterministic samples, save as QDQ bytes, load those
// back, and run the int8 session once. Each step either works or is refused with q8::Error.
// Inputs stay small (the model's input at most 4096 elements) so each execution is fast.
#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <string>
#include <vector>

#include "q8/q8.h"

namespace {

constexpr int64_t kMaxInputElements = 4096;

bool concrete(const std::vector<int64_t>& shape, int64_t batch, std::vector<int64_t>& out) {
  int64_t n = 1;
  out.clear();
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i] < 0 ? (i == 0 ? batch : 1) : shape[i];
    if (__builtin_mul_overflow(n, d, &n) || n > kMaxInputElements * batch) return false;
    out.push_back(d);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("Q8_MAX_WORKSPACE_MB", "256", 0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (size_t{1} << 20)) return 0;
  try {
    const q8::Model fp32 = q8::Model::load_from_memory(data, size, "fuzz.onnx");
    if (fp32.is_quantized() || fp32.inputs().size() != 1) return 0;
    // Three samples along a dynamic batch axis; a fixed batch calibrates on its own size.
    std::vector<int64_t> calib_shape, run_shape;
    if (!concrete(fp32.inputs()[0].shape, 3, calib_shape) || !concrete(fp32.inputs()[0].shape, 1, run_shape)) return 0;
    q8::Tensor calib(calib_shape);
    for (int64_t i = 0; i < calib.numel(); ++i) calib.data()[i] = static_cast<float>((i * 37) % 23) / 4.f - 2.5f;
    q8::QuantizeOptions options;
    options.method = static_cast<q8::Calibration>(size % 4);
    const q8::Model int8 = q8::quantize(fp32, {calib}, options);
    // The QDQ bytes must load again; saved through a file, as users do.
    char shm[] = "/dev/shm/q8_fuzz_quantize_XXXXXX";  // tmpfs: the save's fsync costs nothing
    char tmp[] = "/tmp/q8_fuzz_quantize_XXXXXX";
    char* path = shm;
    int fd = mkstemp(shm);
    if (fd < 0) fd = mkstemp(path = tmp);
    if (fd < 0) return 0;
    close(fd);
    try {
      int8.save(path);
      const q8::Model again = q8::Model::load(path);
      q8::Session session(again);
      const std::vector<q8::Tensor> out = session.run({q8::Tensor(run_shape)});
      if (out.size() != again.outputs().size()) __builtin_trap();
    } catch (const q8::Error&) {
      unlink(path);
      throw;
    }
    unlink(path);
  } catch (const q8::Error&) {
  }
  return 0;
}
