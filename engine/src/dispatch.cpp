#include "dispatch.h"

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

namespace q8::rt {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::neon: return "neon";
    case Isa::neondot: return "neondot";
    case Isa::neoni8mm: return "neoni8mm";
  }
  return "?";
}

namespace {

bool cpu_init() {
  static const bool ok = cpuinfo_initialize();
  return ok;
}

// The fp32 table for a path: paths without fp32 kernels of their own use the nearest below.
const kern::F32Kernels* f32_table(Isa isa) {
  switch (isa) {
    case Isa::avx512vnni:
    case Isa::avx512: return kern::f32_kernels_avx512();
    case Isa::avx2: return kern::f32_kernels_avx2();
    case Isa::neoni8mm:
    case Isa::neondot:
    case Isa::neon: return kern::f32_kernels_neon();
    case Isa::scalar: break;
  }
  return kern::f32_kernels_scalar();
}

const kern::QU8Kernels* qu8_table(Isa isa) {
  switch (isa) {
    case Isa::avx512vnni: return kern::qu8_kernels_avx512vnni();
    case Isa::avx512: return kern::qu8_kernels_avx512();
    case Isa::avx2: return kern::qu8_kernels_avx2();
    case Isa::neoni8mm: return kern::qu8_kernels_neoni8mm();
    case Isa::neondot: return kern::qu8_kernels_neondot();
    case Isa::neon: return kern::qu8_kernels_neon();
    case Isa::scalar: break;
  }
  return kern::qu8_kernels_scalar();
}

bool cpu_has(Isa isa) {
  if (!cpu_init()) return isa == Isa::scalar;
  switch (isa) {
    case Isa::scalar: return true;
#if defined(Q8_ARCH_X86)
    case Isa::avx2: return cpuinfo_has_x86_avx2() && cpuinfo_has_x86_fma3();
    case Isa::avx512:
      return cpuinfo_has_x86_avx512f() && cpuinfo_has_x86_avx512bw() && cpuinfo_has_x86_avx512vl() &&
             cpuinfo_has_x86_avx512dq();
    case Isa::avx512vnni: return cpu_has(Isa::avx512) && cpuinfo_has_x86_avx512vnni();
#endif
#if defined(Q8_ARCH_ARM64)
    case Isa::neon: return cpuinfo_has_arm_neon();
    case Isa::neondot: return cpuinfo_has_arm_neon_dot();
#if defined(__linux__)
    case Isa::neoni8mm: return cpuinfo_has_arm_neon_dot() && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#endif
#endif
    default: return false;
  }
}

Dispatch tables_for(Isa isa) {
  Dispatch d;
  d.isa = isa;
  d.f32 = f32_table(isa);
  d.qu8 = qu8_table(isa);
  return d;
}

// Parses a path name and checks this CPU and build can run it.
Isa runnable_isa(const std::string& want, const char* what) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512vnni, Isa::neon, Isa::neondot, Isa::neoni8mm}) {
    if (want != isa_name(i)) continue;
    for (Isa ok : supported_isas())
      if (ok == i) return i;
    throw Error(std::string(what) + want + ": this CPU (" + cpu_summary() + ") cannot run that path");
  }
  throw Error(std::string(what) + "'" + want +
              "' is not one of scalar, avx2, avx512, avx512vnni, neon, neondot, neoni8mm");
}

Dispatch decide() {
  const char* forced = std::getenv("Q8_ISA");
  if (forced && *forced) return tables_for(runnable_isa(forced, "Q8_ISA="));
  return tables_for(supported_isas().front());
}

}  // namespace

std::vector<Isa> supported_isas() {
  std::vector<Isa> r;
  for (Isa i : {Isa::avx512vnni, Isa::avx512, Isa::avx2, Isa::neoni8mm, Isa::neondot, Isa::neon})
    if (cpu_has(i) && f32_table(i) && qu8_table(i)) r.push_back(i);
  r.push_back(Isa::scalar);
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
  static const Dispatch all[] = {tables_for(Isa::scalar),     tables_for(Isa::avx2), tables_for(Isa::avx512),
                                 tables_for(Isa::avx512vnni), tables_for(Isa::neon), tables_for(Isa::neondot),
                                 tables_for(Isa::neoni8mm)};
  return all[static_cast<int>(runnable_isa(isa, "isa "))];
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
#endif
#if defined(Q8_ARCH_ARM64)
  add(cpuinfo_has_arm_neon(), "neon");
  add(cpuinfo_has_arm_neon_dot(), "dotprod");
#if defined(__linux__)
  add((getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0, "i8mm");
#endif
#endif
  return name + ", " + std::to_string(cpuinfo_get_cores_count()) + " cores, " + feats;
}

}  // namespace q8::rt
