// Runs the book's kernels (the three .cu files, included below) on the CPU emulation of
// cuda_emu.h and compares them with a double-precision loop. Built by the tests with
//   -DDTYPE=float|double -DITEMSV=<steps a thread> -DSP_BLOCK=<threads a tile>
// from sources prepared by fake_gpu.emulate_source.
//
// argv: resident jitter_us hold_us stall_us (the emulation's settings, see cuda_emu.h)
// stdin: one case a line
//     kernel T C reverse with_h0 seed p1 p2
// kernel: serial | three_phase (p1 = blocks, p2 = warps) | single_pass | single_pass_vjp
// (p1 = CG; for single_pass, p2 = an offset in elements of a and b, and p2 % 2 of h, from
// 16-byte aligned memory: a sliced input). seed: the inputs and the emulation's schedule.
// stdout, one line a case:
//     max_abs_error flag0_reads flag1_reads flag2_reads waits max_distance max_resident
// (NaN, an unwritten element, propagates into the error.)
#include "cuda_emu.h"
#include <cstdint>
#include <iostream>
#include <random>
#include <span>
#include <string>
#include "serial.cu"
#include "three_phase.cu"
#include "single_pass.cu"

struct alignas(16) DTYPE2 {  // 16-byte aligned storage
    DTYPE x[16 / sizeof(DTYPE)];
};

template <int CG, bool GRAD = false>
void run_single_pass(const DTYPE* a, const DTYPE* b, const DTYPE* h0, DTYPE* h, long long n,
                     long long C, int reverse, const DTYPE* hf = nullptr, DTYPE* da = nullptr) {
    constexpr int ITEMS = ITEMSV;
    long long L = (SP_BLOCK / CG) * ITEMS;
    long long n_groups = (C + CG - 1) / CG;
    long long n_tiles = n_groups * ((n + L - 1) / L);
    std::vector<int> flags(n_tiles + 1, 0);
    // the scratch starts as NaN: a value read before it was published shows in the result
    std::vector<DTYPE> aa(n_tiles * CG, NAN), ab(n_tiles * CG, NAN), inc(n_tiles * CG, NAN);
    int vn = 16 / sizeof(DTYPE);
    auto al = [](const void* p) { return (uintptr_t)p % 16 == 0; };
    int vec_ok = C == 1 && (!reverse || n % vn == 0) && al(a) && al(b) && al(h) &&
                 (!GRAD || (al(hf) && al(da)));
    unsigned* counter = reinterpret_cast<unsigned*>(&flags[n_tiles]);
    launch(n_tiles, SP_BLOCK, [&] {
        single_pass_scan<DTYPE, CG, ITEMS, GRAD>(a, b, h0, h, n, C, n_groups, reverse, vec_ok,
                                                 flags.data(), aa.data(), ab.data(),
                                                 inc.data(), counter, hf, da);
    });
}

template <bool GRAD>
auto pick(long long cg) {
    switch (cg) {
        case 1: return &run_single_pass<1, GRAD>;
        case 2: return &run_single_pass<2, GRAD>;
        case 4: return &run_single_pass<4, GRAD>;
        case 8: return &run_single_pass<8, GRAD>;
        case 16: return &run_single_pass<16, GRAD>;
        default: return &run_single_pass<32, GRAD>;
    }
}

int main(int argc, char** argv) {
    EmuConfig base;
    if (argc == 5) {
        base.resident = std::stoul(argv[1]);
        base.jitter_us = std::stoul(argv[2]);
        base.hold_us = std::stoul(argv[3]);
        base.stall_us = std::stoul(argv[4]);
    }
    std::string kernel;
    long long n, C, p1, p2;
    int reverse, with_h0;
    unsigned seed;
    while (std::cin >> kernel >> n >> C >> reverse >> with_h0 >> seed >> p1 >> p2) {
        emu_config = base;
        emu_config.seed = seed;
        emu_counters.reset();
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<double> ua(0.5, 1.0);
        std::normal_distribution<double> nd;
        // offsets from 16-byte aligned storage (single_pass: p2, a sliced input)
        const long long oab = kernel == "single_pass" ? p2 : 0, oh = oab % 2;
        std::vector<DTYPE2> sa(n * C + 4), sb(n * C + 4), sh(n * C + 4);
        std::span<DTYPE> a(reinterpret_cast<DTYPE*>(sa.data()) + oab, n * C);
        std::span<DTYPE> b(reinterpret_cast<DTYPE*>(sb.data()) + oab, n * C);
        std::span<DTYPE> h(reinterpret_cast<DTYPE*>(sh.data()) + oh, n * C);
        std::vector<DTYPE> h0(C, 0);
        for (auto& x : h) x = NAN;
        for (auto& x : a) x = (DTYPE)(ua(rng) * (rng() & 1 ? 1 : -1));
        for (auto& x : b) x = (DTYPE)nd(rng);
        if (with_h0)
            for (auto& x : h0) x = (DTYPE)nd(rng);
        double worst = 0;
        if (kernel == "serial") {
            launch(2, 64, [&] {
                serial_scan<DTYPE, 64 / sizeof(DTYPE)>(a.data(), b.data(), h0.data(), h.data(), n,
                                                       C, reverse);
            });
        } else if (kernel == "three_phase") {
            // the warps' and blocks' maps, then (below 32 channels) one map a thread
            const long long n_scratch = p1 * (p2 + 1) * C + (C < 32 ? p1 * 32 * p2 : 0);
            std::vector<DTYPE> P(n_scratch, NAN), R(n_scratch, NAN);
            DTYPE *pa = a.data(), *pb = b.data(), *pP = P.data(), *pR = R.data();
            launch(p1, 32 * p2, [&] { reduce_phase<DTYPE>(pa, pb, pP, pR, n, C, reverse); });
            launch(3, 64, [&] { block_scan_phase<DTYPE>(h0.data(), pP, pR, C, p1, (int)p2); });
            launch(p1, 32 * p2, [&] {
                downsweep_phase<DTYPE>(pa, pb, pP, pR, h.data(), n, C, reverse);
            });
        } else if (kernel == "single_pass") {
            pick<false>(p1)(a.data(), b.data(), h0.data(), h.data(), n, C, reverse, nullptr,
                            nullptr);
        } else if (kernel == "single_pass_vjp") {
            // b plays g; hf = the forward states (direction `reverse`); the gradient's scan runs
            // the other way. Compare db and da with a double loop, keep the worse error.
            std::vector<DTYPE> hf(n * C), da(n * C, NAN);
            for (long long c = 0; c < C; ++c) {
                double x = h0[c];
                for (long long s = 0; s < n; ++s) {
                    long long t = reverse ? n - 1 - s : s;
                    x = (double)a[t * C + c] * x + (double)b[t * C + c];
                    hf[t * C + c] = (DTYPE)x;
                }
            }
            pick<true>(p1)(a.data(), b.data(), h0.data(), h.data(), n, C, !reverse, hf.data(),
                           da.data());
            for (long long c = 0; c < C; ++c) {
                double db = 0;
                auto mem = [&](long long s) { return (reverse ? s : n - 1 - s) * C + c; };
                for (long long s = 0; s < n; ++s) {
                    double decay = s > 0 ? (double)a[mem(s - 1)] : 0.0;
                    db = decay * db + (double)b[mem(s)];
                    double next = s + 1 < n ? (double)hf[mem(s + 1)] : (double)h0[c];
                    double e1 = std::fabs((double)h[mem(s)] - db) / (1 + std::fabs(db));
                    double e2 = std::fabs((double)da[mem(s)] - db * next) /
                                (1 + std::fabs(db * next));
                    if (!(e1 <= worst)) worst = e1;
                    if (!(e2 <= worst)) worst = e2;
                }
            }
        } else {
            std::cerr << "unknown kernel " << kernel << std::endl;
            return 2;
        }
        if (kernel != "single_pass_vjp") {
            for (long long c = 0; c < C; ++c) {
                double x = h0[c];
                for (long long s = 0; s < n; ++s) {
                    long long t = reverse ? n - 1 - s : s;
                    x = (double)a[t * C + c] * x + (double)b[t * C + c];
                    double e = std::fabs((double)h[t * C + c] - x) / (1 + std::fabs(x));
                    if (!(e <= worst)) worst = e;
                }
            }
        }
        auto& k = emu_counters;
        std::cout << worst << " " << k.flag_reads[0] << " " << k.flag_reads[1] << " "
                  << k.flag_reads[2] << " " << k.waits << " " << k.max_distance << " "
                  << k.max_resident << std::endl;
    }
    return 0;
}
