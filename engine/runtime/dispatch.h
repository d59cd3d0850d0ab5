// Which kernel path runs: decided once per process from cpuinfo (best ISA first) and the
// Q8_ISA environment variable, which forces a path and is an error if the CPU cannot run it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/f32.h"
#include "kernels/qu8.h"

namespace q8::rt {

// The kernel paths. Their names, tables and CPU requirements are one row each in dispatch.cpp.
enum class Isa { scalar, avx2, avx512, avx512vnni, amx, neon, neondot, neoni8mm, avxvnni, count };
const char* isa_name(Isa isa);

struct Dispatch {
  Isa isa = Isa::scalar;                  // the chosen path
  const kern::F32Kernels* f32 = nullptr;  // the fp32 table for that path
  const kern::QU8Kernels* qu8 = nullptr;  // the int8 table for that path
};

// The process-wide choice; throws q8::Error if Q8_ISA names a path this CPU or build lacks.
const Dispatch& dispatch();
// The tables of a named path ("avx2", ...); throws q8::Error if unknown or not runnable here.
const Dispatch& dispatch_for(const std::string& isa);
// Paths this CPU and build can run, best first.
std::vector<Isa> supported_isas();
// The other paths, each with why this CPU or build cannot run it (for `q8 info`).
std::vector<std::pair<std::string, std::string>> unsupported_isas();
std::string cpu_summary();

}  // namespace q8::rt
