// The compiled form of a graph: packed weights (built once per session), and for one set of
// input shapes, a list of steps over one memory arena. run() loops over the steps and never
// allocates.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "runtime/dispatch.h"
#include "runtime/thread_pool.h"

namespace q8::rt {

// 64-byte aligned, zero-filled storage (cache lines; full zmm loads never straddle two lines).
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  ~AlignedBuffer() { std::free(p_); }
  uint8_t* data() const { return p_; }
  template <class T>
  T* as() const {
    return reinterpret_cast<T*>(p_);
  }
  size_t size() const { return n_; }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

// Buffer addresses, fixed once the arena is laid out; steps read them when they run.
class Addresses {
 public:
  uint8_t*& operator[](size_t id) { return p_[id]; }
  uint8_t* operator[](size_t id) const { return p_[id]; }
  uint8_t* u8(int id) const { return p_[static_cast<size_t>(id)]; }
  float* f32(int id) const { return reinterpret_cast<float*>(p_[static_cast<size_t>(id)]); }
  void resize(size_t n) { p_.resize(n); }

 private:
  std::vector<uint8_t*> p_;
};

// Weights packed for the chosen kernels, per node id of the optimised graph. Independent of the
// input shapes, so a change of batch size re-plans without re-packing.
struct PackedWeights {
  std::vector<AlignedBuffer> per_node;  // empty where a node has nothing to pack
};
PackedWeights pack_weights(const ir::Graph& g, const Dispatch& d);

// The kernel a node runs with (for `q8 info`): a kernel table entry's name, or what the node does
// without one ("view (no copy)").
std::string kernel_name(const ir::Graph& g, const ir::Node& n, const Dispatch& d);
// Multiply-accumulates of a node whose shapes are inferred.
int64_t node_macs(const ir::Graph& g, const ir::Node& n);

class Plan {
 public:
  // `g` must have shapes inferred for the inputs this plan serves; `g` and `w` must outlive it.
  Plan(const ir::Graph& g, const PackedWeights& w, const Dispatch& d);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  // inputs: plain C-order float data for each graph input; outputs: float destinations sized
  // to the output shapes.
  // With `step_ms` (one slot per step), each step's wall time is written there.
  void run(ThreadPool& pool, const std::vector<const float*>& inputs, const std::vector<float*>& outputs,
           double* step_ms = nullptr);
  // What each step computes: the node's name, or "<tensor> (to NHWC)" for layout changes.
  std::vector<std::string> step_names() const;
  size_t arena_bytes() const { return arena_.size(); }

  struct Step;
  struct Builder;

 private:
  std::vector<std::unique_ptr<Step>> steps_;
  Addresses buffers_;  // buffer id -> address (arena or constant)
  AlignedBuffer arena_;
  std::vector<AlignedBuffer> owned_;  // converted constants, zero rows
  std::vector<int> input_buffers_, output_buffers_;
  std::vector<size_t> output_sizes_, input_sizes_;
};

}  // namespace q8::rt
