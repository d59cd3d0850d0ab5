// Loads a model through the installed q8 and prints its outputs for a zero input, one per line.
//   q8_consumer MODEL.onnx
#include <cstdio>
#include <vector>

#include <q8/q8.h>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: q8_consumer MODEL.onnx\n");
    return 2;
  }
  try {
    q8::Model model = q8::Model::load(argv[1]);
    q8::Session session(model, {1});
    std::vector<q8::Tensor> out = session.run({q8::Tensor({1, 1, 28, 28})});
    if (out.empty()) {
      std::fprintf(stderr, "q8_consumer: no outputs\n");
      return 1;
    }
    for (float v : out[0].values()) std::printf("%.6g\n", v);
    return 0;
  } catch (const q8::Error& e) {
    std::fprintf(stderr, "q8_consumer: %s\n", e.what());
    return 1;
  }
}
