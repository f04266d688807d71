// The dispatch library's one baseline-compiled file: detects the CPU, reads POEM_SIMD, and points every
// layer's active table at the chosen target's (core/dispatch.hpp documents the behaviour).
//
// Before static initialisation reaches this file the tables point at the scalar references, so a
// kernel called from another file's static initialiser is still correct; it is just not fast.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "poem/core/dispatch.hpp"

#include "kernel_tables.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace poem::detail {

std::atomic<const core_kernels*> active_core_kernels{&kernel_tables_scalar.core};
std::atomic<const fusion_kernels*> active_fusion_kernels{&kernel_tables_scalar.fusion};
std::atomic<const model_kernels*> active_model_kernels{&kernel_tables_scalar.model};
std::atomic<const loss_kernels*> active_loss_kernels{&kernel_tables_scalar.loss};

namespace {

#if defined(__x86_64__) || defined(__i386__)
struct cpu_features {
    bool sse2 = false, avx2_fma = false, avx512 = false, avx512bf16 = false, amx = false;
    bool amd = false;  // vendor AuthenticAMD (see compiled_targets)
};

// AMX's tile data is state the Linux kernel hands a process only on request (arch_prctl
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16 and later); without it the first tile
// instruction faults. Asked once, at startup, and only where the CPU has AMX.
bool amx_permitted() noexcept {
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    constexpr long req_xcomp_perm = 0x1023, xtiledata = 18;
    return syscall(SYS_arch_prctl, req_xcomp_perm, xtiledata) == 0;
#else
    return false;
#endif
}

// What the CPU has and the OS saves: AVX needs XCR0's SSE and AVX state, AVX-512 also its opmask and
// upper-ZMM state (a CPU can have AVX-512 that the kernel does not enable).
cpu_features detect() noexcept {
    cpu_features f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(0, &a, &b, &c, &d)) f.amd = b == 0x68747541u && d == 0x69746E65u && c == 0x444D4163u;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    f.sse2 = (d >> 26) & 1u;
    const bool fma = (c >> 12) & 1u, osxsave = (c >> 27) & 1u, avx = (c >> 28) & 1u;
    if (!osxsave || !avx) return f;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const std::uint64_t xcr0 = (static_cast<std::uint64_t>(xcr0_hi) << 32) | xcr0_lo;
    if ((xcr0 & 0x6u) != 0x6u) return f;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = (b >> 5) & 1u;
    f.avx2_fma = avx2 && fma;
    const bool avx512 = ((b >> 16) & 1u) && ((b >> 17) & 1u) && ((b >> 28) & 1u) && ((b >> 30) & 1u) &&
                        ((b >> 31) & 1u);  // F, DQ, CD, BW, VL
    f.avx512 = f.avx2_fma && avx512 && (xcr0 & 0xE6u) == 0xE6u;
    const unsigned max_subleaf = a;
    const bool amx_tile = (d >> 24) & 1u, amx_bf16 = (d >> 22) & 1u;
    if (f.avx512 && max_subleaf >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = (a >> 5) & 1u;
    // AMX: the CPU's tile and bf16 units, the OS's tile state in XCR0 (bits 17, 18), and the permission.
    f.amx = f.avx512bf16 && amx_tile && amx_bf16 && ((xcr0 >> 17) & 3u) == 3u && amx_permitted();
    return f;
}
#endif

struct target {
    const char* name;
    const kernel_tables* tables;
    bool supported;
};

// The targets compiled in (poem_dispatch.cmake sets POEM_DISPATCH_HAS_*), best first.
std::vector<target> compiled_targets() {
    std::vector<target> t;
#if defined(__x86_64__) || defined(__i386__)
    const cpu_features f = detect();
    // avx512bf16 and amx differ from avx512 in the bf16 GEMM alone. amx (tiles, where the CPU has them)
    // comes first. avx512bf16 gives avx512's bits; which of the two is faster is the CPU's: vdpbf16ps
    // runs at twice the fp32 FMA rate on AMD's Zen 4, at about half of it on the Intel Xeon we measured
    // (docs/model.md, "Precision"), where the widening kernel of avx512 wins. So it ranks above avx512
    // on AMD only; elsewhere it stays a choice (POEM_SIMD, set_simd_target).
#ifdef POEM_DISPATCH_HAS_AMX
    t.push_back({"amx", &kernel_tables_amx, f.amx});
#endif
#ifdef POEM_DISPATCH_HAS_AVX512BF16
    if (f.amd) t.push_back({"avx512bf16", &kernel_tables_avx512bf16, f.avx512bf16});
#endif
#ifdef POEM_DISPATCH_HAS_AVX512
    t.push_back({"avx512", &kernel_tables_avx512, f.avx512});
#endif
#ifdef POEM_DISPATCH_HAS_AVX512BF16
    if (!f.amd) t.push_back({"avx512bf16", &kernel_tables_avx512bf16, f.avx512bf16});
#endif
#ifdef POEM_DISPATCH_HAS_AVX2
    t.push_back({"avx2", &kernel_tables_avx2, f.avx2_fma});
#endif
#ifdef POEM_DISPATCH_HAS_SSE2
    t.push_back({"sse2", &kernel_tables_sse2, f.sse2});
#endif
#endif
    t.push_back({"scalar", &kernel_tables_scalar, true});
    return t;
}

struct selection {
    std::mutex mu;
    std::vector<target> targets = compiled_targets();
    const target* active = nullptr;
    std::string error;  // POEM_SIMD's, until set_simd_target()

    void activate(const target& t) {
        active = &t;
        active_core_kernels.store(&t.tables->core, std::memory_order_release);
        active_fusion_kernels.store(&t.tables->fusion, std::memory_order_release);
        active_model_kernels.store(&t.tables->model, std::memory_order_release);
        active_loss_kernels.store(&t.tables->loss, std::memory_order_release);
    }
    const target* find(const std::string& name) const {
        for (const target& t : targets)
            if (name == t.name) return &t;
        return nullptr;
    }
    std::string names(bool supported_only) const {
        std::string s;
        for (const target& t : targets)
            if (t.supported || !supported_only) s += (s.empty() ? "" : ", ") + std::string(t.name);
        return s;
    }
    // Why `name` cannot run here, or "" when it can.
    std::string refusal(const std::string& name) const {
        const target* t = find(name);
        if (t == nullptr) return "\"" + clip(name) + "\" is not a target of this build (" + names(false) + ")";
        if (!t->supported) return "this CPU does not support " + name + " (it runs: " + names(true) + ")";
        return "";
    }

    selection() {
        const target* best = nullptr;
        for (const target& t : targets)
            if (t.supported && best == nullptr) best = &t;
        const char* env = std::getenv("POEM_SIMD");
        if (env != nullptr && *env != '\0') {
            const std::string why = refusal(env);
            if (why.empty()) {
                activate(*find(env));
                return;
            }
            const target* sse2 = find("sse2");
            const target& baseline = sse2 != nullptr && sse2->supported ? *sse2 : *find("scalar");
            error = "poem: POEM_SIMD=" + clip(env) + ": " + why;
            std::fprintf(stderr, "%s; running the %s kernels\n", error.c_str(), baseline.name);
            activate(baseline);
            return;
        }
        activate(*best);
    }
};

selection& chosen() {
    static selection s;
    return s;
}

// Chooses at startup, so the first request does not pay for CPUID.
const bool chosen_at_startup = (chosen(), true);

}  // namespace
}  // namespace poem::detail

namespace poem {

const char* simd_target() {
    detail::selection& s = detail::chosen();
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.error.empty()) throw error(s.error);
    return s.active->name;
}

void set_simd_target(const std::string& name) {
    detail::selection& s = detail::chosen();
    std::lock_guard<std::mutex> lock(s.mu);
    const std::string why = s.refusal(name);
    check(why.empty(), "set_simd_target: ", why);
    s.activate(*s.find(name));
    s.error.clear();
}

std::vector<std::string> simd_targets() {
    detail::selection& s = detail::chosen();
    std::vector<std::string> names;
    for (const detail::target& t : s.targets)
        if (t.supported) names.emplace_back(t.name);
    return names;
}

}  // namespace poem
