// ONNX ModelProto -> q8 graph IR: parse, validate, map ops.
//
// The importer knows only the graph IR and protobuf. It checks everything that can be checked
// without shapes (op support, input/output counts, attribute kinds and values, initializer
// sizes, name resolution, cycles) and leaves shape inference to the engine.
#pragma once
#include <cstddef>
#include <string>
#include "ir/graph.h"
namespace q8::onnx {
struct ImportLimits {                  // caps a user can raise; hostile files must not exhaust memory
  int64_t max_file_bytes = 2LL << 30;  // 2 GiB
  int64_t max_nodes = 100000;
  int64_t max_rank = 8;
  int64_t max_tensor_bytes = 1LL << 31;     // one initializer
  int64_t max_external_bytes = 16LL << 30;  // all external data of one model together (16 GiB)
};
// Parses and validates an ONNX ModelProto into a q8 graph. Throws q8::Error whose one-line
// message names `source` (the file name) and, for node problems, the node name and op type.
// A model in memory has no folder: tensors stored as external data are refused.
ir::Graph import_model(const void* data, size_t size, const std::string& source, const ImportLimits& limits = {});
// Same, from a file. Tensors stored as ONNX external data are read from files inside the
// model's folder; a location that is absolute, contains "..", passes through a symbolic link or
// is not a regular file is refused, naming the tensor.
ir::Graph import_file(const std::string& path, const ImportLimits& limits = {});
}  // namespace q8::onnx
