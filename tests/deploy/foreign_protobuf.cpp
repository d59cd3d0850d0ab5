// A program with a protobuf of its own, linked with q8: it defines functions and a variable under
// the same mangled names as protobuf-lite 3.21 pieces that q8 links inside itself, with other
// behaviour, as a different protobuf version would. Linking must not report them twice, the
// program must get its own, and q8 must keep using its own (it still parses and runs the model).
// It prints the model's outputs for a zero input, one per line, then "own protobuf: ok".
//   foreign_protobuf MODEL.onnx
#include <cstdio>
#include <string>
#include <vector>

#include <q8/q8.h>

namespace google {
namespace protobuf {

class MessageLite {
 public:
  bool ParseFromArray(const void* data, int size);
  std::string SerializeAsString() const;
};

// Accept nothing, and serialize to a fixed text: q8 could not load or save a model with these.
bool MessageLite::ParseFromArray(const void*, int) { return false; }
std::string MessageLite::SerializeAsString() const { return "foreign protobuf"; }

namespace internal {
// In protobuf this is the shared empty string (not a std::string); here a text q8 must never
// read or write.
std::string fixed_address_empty_string = "foreign";
}  // namespace internal

}  // namespace protobuf
}  // namespace google

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: foreign_protobuf MODEL.onnx\n");
    return 2;
  }
  try {
    q8::Model model = q8::Model::load(argv[1]);
    q8::Session session(model, {1});
    std::vector<q8::Tensor> out = session.run({q8::Tensor({1, 1, 28, 28})});
    if (out.empty()) {
      std::fprintf(stderr, "foreign_protobuf: no outputs\n");
      return 1;
    }
    for (float v : out[0].values()) std::printf("%.6g\n", v);
  } catch (const q8::Error& e) {
    std::fprintf(stderr, "foreign_protobuf: %s\n", e.what());
    return 1;
  }
  google::protobuf::MessageLite m;
  if (m.ParseFromArray("", 0) || m.SerializeAsString() != "foreign protobuf" ||
      google::protobuf::internal::fixed_address_empty_string != "foreign") {
    std::fprintf(stderr, "foreign_protobuf: the program's own protobuf symbols were replaced\n");
    return 1;
  }
  std::printf("own protobuf: ok\n");
  return 0;
}
