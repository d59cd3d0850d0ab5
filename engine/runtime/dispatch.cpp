#include "runtime/dispatch.h"

#include <cpuinfo.h>

#include <cstdlib>
#include <mutex>
#if defined(Q8_ARCH_ARM64) && defined(__linux__)
#include <sys/auxv.h>  // cpuinfo (Debian 12) does not report I8MM
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

#include "q8/error.h"
#if defined(Q8_ARCH_X86)
#include "kernels/x86/amx_support.h"
#include "kernels/x86/avxvnni_support.h"
#endif

namespace q8::rt {

namespace {

bool cpu_init() {
  static const bool ok = cpuinfo_initialize();
  return ok;
}

#if defined(Q8_ARCH_X86)
bool has_avx512() {
  return cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() && cpuinfo_has_x86_avx512vl() &&
         cpuinfo_has_x86_avx512dq();
}
#endif
// The AVX-512 and AVX-512 VNNI tables come in two GEMM tile shapes, the same kernels otherwise.
// Intel's cores take the wider tiles with 24 accumulators (fp32 6x64, int8 6x64): on an Intel Xeon
// (Ice Lake) they run ResNet's convolutions 1.0-1.7x faster than 6x32 and 8x32, whose 12 and 16
// accumulators leave the two FMA / vpdpbusd pipes idle while weights stream in. AMD's keep 6x32 and
// 8x32: on Zen 5 the fp32 6x64 tile measured slower, in a build where it still spilled a register;
// neither 6x64 tile has been measured there since (BENCHMARKS.md).
bool intel_cores() {
  const cpuinfo_core* core = cpu_init() ? cpuinfo_get_core(0) : nullptr;
  return core && core->vendor == cpuinfo_vendor_intel;
}
const kern::F32Kernels* f32_kernels_avx512_for_cores() {
  return intel_cores() ? kern::f32_kernels_avx512_6x64() : kern::f32_kernels_avx512();
}
const kern::QU8Kernels* qu8_kernels_avx512vnni_for_cores() {
  return intel_cores() ? kern::qu8_kernels_avx512vnni_6x64() : kern::qu8_kernels_avx512vnni();
}
// The AVX-512 family's int8 tables with their byte lookup (the unary ops of int8 models: Sigmoid,
// SiLU, HardSwish, ...) on VBMI where the CPU has it (kernels/qu8.h's qu8_lookup__avx512vbmi):
// the tables are constant, so this is a copy with that entry replaced, made once per table.
template <const kern::QU8Kernels* (*Table)()>
const kern::QU8Kernels* with_vbmi_lookup() {
  static const kern::QU8Kernels* const t = []() -> const kern::QU8Kernels* {
    const kern::QU8Kernels* base = Table();
#if defined(Q8_ARCH_X86)
    if (base && cpu_init() && has_avx512() && cpuinfo_has_x86_avx512vbmi()) {
      using kern::qu8_lookup__avx512vbmi;  // the table entry carries the kernel's own name
      static kern::QU8Kernels copy = *base;
      copy.lookup = Q8_KERNEL(qu8_lookup__avx512vbmi);
      return &copy;
    }
#endif
    return base;
  }();
  return t;
}
#if defined(Q8_ARCH_ARM64) && defined(__linux__)
bool has_i8mm() { return (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0; }
#endif

// Null when this CPU can run the path, else why not ("CPU has no AVX-512 VNNI").
using CpuCheck = const char* (*)();

// One row per kernel path: its name, its tables (the fp32 one is that of the nearest path below
// with fp32 kernels of its own whose CPU check this one's implies), and what the CPU must have.
// Rows are in order of preference: the first row of this architecture that the CPU and build can
// run is the default path.
struct Path {
  Isa isa;
  const char* name;
  const kern::F32Kernels* (*f32)();
  const kern::QU8Kernels* (*qu8)();
  CpuCheck cpu;
};

const Path kPaths[] = {
    {Isa::amx, "amx", f32_kernels_avx512_for_cores, with_vbmi_lookup<kern::qu8_kernels_amx>,
     [] {
       const char* why = "not an x86 build";
#if defined(Q8_ARCH_X86)
       // cpuinfo (Debian 12) does not know AMX: CPUID, XCR0 and the Linux permission request.
       // The table's other entries are the avx512vnni table's (every AMX CPU has AVX-512 VNNI).
       if (!kern::qu8_amx_usable(&why)) return why;
       if (has_avx512() && cpuinfo_has_x86_avx512vnni()) return static_cast<const char*>(nullptr);
       why = "CPU has AMX but not AVX-512 VNNI";
#endif
       return why;
     }},
    {Isa::avx512vnni, "avx512vnni", f32_kernels_avx512_for_cores, with_vbmi_lookup<qu8_kernels_avx512vnni_for_cores>,
     [] {
#if defined(Q8_ARCH_X86)
       if (has_avx512() && cpuinfo_has_x86_avx512vnni()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no AVX-512 VNNI";
     }},
    // AVX-VNNI: the VEX (ymm) vpdpbusd of Alder Lake and later Intel clients, which have no
    // AVX-512. Below avx512vnni: where a CPU has both, zmm does twice the work per instruction,
    // and on Zen 5 it issues at the same rate (measured: 2 ymm or 2 zmm vpdpbusd per cycle, no
    // down-clock), so the avx512vnni kernels run about 2x faster and resnet18 int8 takes about
    // half the time. Above avx512 (F+BW, no VNNI), whose exact int8 product costs a vpmaddwd and
    // a vpaddd per 32 MACs where this path needs one vpdpbusd.
    {Isa::avxvnni, "avxvnni", kern::f32_kernels_avx2, kern::qu8_kernels_avxvnni,
     [] {
       const char* why = "CPU has no AVX-VNNI";
#if defined(Q8_ARCH_X86)
       // cpuinfo (Debian 12) does not know AVX-VNNI: CPUID and XCR0, with AVX2 and FMA.
       if (kern::qu8_avxvnni_usable(&why)) return static_cast<const char*>(nullptr);
#endif
       return why;
     }},
    {Isa::avx512, "avx512", f32_kernels_avx512_for_cores, with_vbmi_lookup<kern::qu8_kernels_avx512>,
     [] {
#if defined(Q8_ARCH_X86)
       if (has_avx512()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no AVX-512 F/BW/VL/DQ";
     }},
    {Isa::avx2, "avx2", kern::f32_kernels_avx2, kern::qu8_kernels_avx2,
     [] {
#if defined(Q8_ARCH_X86)
       if (cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no AVX2 and FMA3";
     }},
    {Isa::neoni8mm, "neoni8mm", kern::f32_kernels_neon, kern::qu8_kernels_neoni8mm,
     [] {
#if defined(Q8_ARCH_ARM64) && defined(__linux__)
       if (cpuinfo_has_arm_neon_dot() && has_i8mm()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no dot product and I8MM (or the OS does not say)";
     }},
    {Isa::neondot, "neondot", kern::f32_kernels_neon, kern::qu8_kernels_neondot,
     [] {
#if defined(Q8_ARCH_ARM64)
       if (cpuinfo_has_arm_neon_dot()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no dot-product instructions";
     }},
    {Isa::neon, "neon", kern::f32_kernels_neon, kern::qu8_kernels_neon,
     [] {
#if defined(Q8_ARCH_ARM64)
       if (cpuinfo_has_arm_neon()) return static_cast<const char*>(nullptr);
#endif
       return "CPU has no NEON";
     }},
    {Isa::scalar, "scalar", kern::f32_kernels_scalar, kern::qu8_kernels_scalar,
     [] { return static_cast<const char*>(nullptr); }},
};
static_assert(sizeof(kPaths) / sizeof(kPaths[0]) == static_cast<size_t>(Isa::count), "one row per Isa");

const Path& path_of(Isa isa) {
  for (const Path& p : kPaths)
    if (p.isa == isa) return p;
  throw Error("internal error: kernel path " + std::to_string(static_cast<int>(isa)) + " has no row");
}

// Null when the build has both tables and the CPU can run them, else the reason.
const char* unusable(const Path& p) {
  if (!p.f32() || !p.qu8()) return "this build has no kernels for it";
  if (p.isa == Isa::scalar) return nullptr;
  if (!cpu_init()) return "cpuinfo could not read this CPU";
  return p.cpu();
}

Dispatch tables_for(const Path& p) { return Dispatch{p.isa, p.f32(), p.qu8()}; }

std::string all_names() {
  std::string r;
  for (const Path& p : kPaths) r += std::string(r.empty() ? "" : ", ") + p.name;
  return r;
}

// Parses a path name and checks this CPU and build can run it.
const Path& runnable_path(const std::string& want, const char* what) {
  for (const Path& p : kPaths) {
    if (want != p.name) continue;
    if (const char* why = unusable(p))
      throw Error(std::string(what) + want + ": this CPU (" + cpu_summary() + ") cannot run that path (" + why + ")");
    return p;
  }
  throw Error(std::string(what) + "'" + want + "' is not one of " + all_names());
}

Dispatch decide() {
  const char* forced = std::getenv("Q8_ISA");
  if (forced && *forced) return tables_for(runnable_path(forced, "Q8_ISA="));
  return tables_for(path_of(supported_isas().front()));
}

}  // namespace

const char* isa_name(Isa isa) { return path_of(isa).name; }

std::vector<Isa> supported_isas() {
  std::vector<Isa> r;
  for (const Path& p : kPaths)
    if (!unusable(p)) r.push_back(p.isa);
  return r;
}

std::vector<std::pair<std::string, std::string>> unsupported_isas() {
  std::vector<std::pair<std::string, std::string>> r;
  for (const Path& p : kPaths)
    if (const char* why = unusable(p)) r.emplace_back(p.name, why);
  return r;
}

const Dispatch& dispatch() {
  // Decided once; a bad Q8_ISA is reported on every call, not only the first.
  static std::once_flag once;
  static Dispatch d;
  static std::string error;
  std::call_once(once, [] {
    try {
      d = decide();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return d;
}

const Dispatch& dispatch_for(const std::string& isa) {
  // One Dispatch per path, built once; the reference returned stays valid for the process.
  static const std::vector<Dispatch> all = [] {
    std::vector<Dispatch> r(static_cast<size_t>(Isa::count));
    for (const Path& p : kPaths) r[static_cast<size_t>(p.isa)] = tables_for(p);
    return r;
  }();
  return all[static_cast<size_t>(runnable_path(isa, "isa ").isa)];
}

std::string cpu_summary() {
  if (!cpu_init()) return "unknown CPU (cpuinfo failed)";
  std::string name = cpuinfo_get_packages_count() ? cpuinfo_get_package(0)->name : "";
  if (name.empty()) name = "unknown CPU";
  std::string feats;
  auto add = [&](bool has, const char* f) {
    if (has) feats += std::string(feats.empty() ? "" : " ") + f;
  };
#if defined(Q8_ARCH_X86)
  add(cpuinfo_has_x86_sse4_2(), "sse4.2");
  add(cpuinfo_has_x86_avx2(), "avx2");
  add(cpuinfo_has_x86_fma3(), "fma3");
  add(cpuinfo_has_x86_avx512f(), "avx512f");
  add(cpuinfo_has_x86_avx512bw(), "avx512bw");
  add(cpuinfo_has_x86_avx512vl(), "avx512vl");
  add(cpuinfo_has_x86_avx512vnni(), "avx512vnni");
  add(cpuinfo_has_x86_avx512vbmi(), "avx512vbmi");
  add(kern::qu8_avxvnni_usable(), "avxvnni");
#endif
#if defined(Q8_ARCH_ARM64)
  add(cpuinfo_has_arm_neon(), "neon");
  add(cpuinfo_has_arm_neon_dot(), "dotprod");
#if defined(__linux__)
  add(has_i8mm(), "i8mm");
#endif
#endif
  // Logical processors, the count threads can use: cpuinfo's core count comes from CPUID's topology
  // leaves, which virtual machines fill as they like (one core for this 2-vCPU VM's two).
  return name + ", " + std::to_string(cpuinfo_get_processors_count()) + " logical CPUs, " + feats;
}

}  // namespace q8::rt
