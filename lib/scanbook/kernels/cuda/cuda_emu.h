// A CPU emulation of the CUDA features scanbook's kernels use, concurrent like a GPU.
//
// * Every thread of a block is a std::thread; __syncthreads, __syncwarp, shuffles and ballots
//   are barriers on them.
// * The blocks of one launch run at the same time: `emu_config.resident` blocks are resident at
//   once (each a pool of threads that takes the next block when it is done), and they start in a
//   random order (a shuffle of blockIdx.x, seeded by `emu_config.seed`). A block that waits for
//   another (the look-back of single_pass.cu) therefore really waits, while the other is still
//   running.
// * Random short delays: a block waits before it starts, and a thread waits before each
//   release store (publishing a flag) and, now and then, at __syncthreads. With `stall_us`, a
//   block that has just taken a tile from the tile counter (atomicAdd) stalls, at random, so
//   that the tiles after it catch up and wait for it. With `hold_us`, a store that publishes a
//   tile's inclusive state (flag 2) waits that long, so that the tiles after it must combine
//   aggregates across many predecessors.
// * __shared__ memory is per block: fake_gpu.emulate_source (tests/fake_gpu.py) rewrites each
//   declaration `__shared__ T name[N];` into `auto& name = emu_shared<T[N], __COUNTER__>();`
//   before g++ sees the source (a declaration it missed fails to compile: see the macro below).
// * `emu_counters` counts what the look-back did (flag values read, waits, how far back it
//   looked) and how many blocks were resident at once, so tests can check that the waiting and
//   combining paths ran.
//
// * With `emu_config.warp_timeout_ms`, a warp's collectives (__syncwarp, shuffles, ballots)
//   wait at most that long for all 32 lanes: lanes that never arrive (a shuffle inside an
//   `if` that some lanes skip) set `emu_diverged` instead of hanging the process, and every
//   warp collective of the launch then returns at once, so that the launch ends.
//
// What it is not: a model of the GPU's memory ordering (x86 orders more than a GPU does), nor
// of its speed.
#pragma once
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>
#ifndef __global__  // tests/fake_gpu.py redefines it to find the kernels
#define __global__
#endif
#define __device__
#define __forceinline__ inline
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif
#define __shared__ __shared__declaration_not_rewritten_by_fake_gpu_emulate_source
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
using std::max;  // CUDA's min and max of two ints or two long longs
using std::min;
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;  // one launch at a time

struct EmuConfig {
    unsigned resident = 4;           // blocks running at once
    unsigned long long seed = 1;     // start order and delays
    unsigned jitter_us = 40;         // the longest random delay
    unsigned hold_us = 0;            // extra delay before publishing flag 2 (0: none)
    unsigned stall_us = 0;           // longest stall of a block that just took a tile (atomicAdd)
    unsigned warp_timeout_ms = 0;  // longest wait at a warp collective (0: no limit)
};
inline EmuConfig emu_config;

struct EmuCounters {
    std::atomic<long long> flag_reads[3];  // look-back reads of a flag, by the value seen
    std::atomic<long long> waits;          // __nanosleep calls (a predecessor not yet there)
    std::atomic<long long> max_distance;   // furthest flag polled, in flags before the block's own
    std::atomic<long long> blocks;         // blocks run
    std::atomic<long long> max_resident;   // most blocks running at the same moment
    std::atomic<long long> resident_now;
    void reset() {
        for (auto& f : flag_reads) f = 0;
        waits = max_distance = blocks = max_resident = resident_now = 0;
    }
};
inline EmuCounters emu_counters;

inline void emu_max(std::atomic<long long>& m, long long v) {
    long long cur = m.load();
    while (v > cur && !m.compare_exchange_weak(cur, v)) {
    }
}

inline std::atomic<int> emu_diverged{0};  // a warp collective that not all lanes reached

struct WarpBarrier {  // std::barrier<>(32), or, with warp_timeout_ms, one that gives up
    std::barrier<> fast{32};
    std::mutex m;
    std::condition_variable cv;
    unsigned count = 0;
    unsigned long long generation = 0;
    void arrive_and_wait() {
        if (emu_config.warp_timeout_ms == 0) {  // no limit: the plain barrier
            fast.arrive_and_wait();
            return;
        }
        std::unique_lock<std::mutex> lock(m);
        if (emu_diverged) return;
        const unsigned long long mine = generation;
        if (++count == 32) {
            count = 0;
            ++generation;
            cv.notify_all();
            return;
        }
        using clock = std::chrono::steady_clock;
        const auto deadline = clock::now() + std::chrono::milliseconds(emu_config.warp_timeout_ms);
        while (generation == mine && !emu_diverged) {
            cv.wait_for(lock, std::chrono::milliseconds(20));
            if (generation == mine && clock::now() >= deadline) emu_diverged = 1;
        }
    }
};

struct WarpCtx {
    WarpBarrier bar;
    double buf[32];
    unsigned bal[32];
};
struct BlockCtx {  // one resident block's slot: its threads run one block after another
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<WarpCtx>> warps;
    std::mutex shared_mutex;
    std::map<const void*, std::unique_ptr<double2[]>> shared;  // this block's __shared__
    unsigned block_id = 0;
    bool done = false;
    std::atomic<const int*> own_flag{nullptr};  // the flag it published first (max_distance)
    void* shared_for(const void* tag, size_t n) {
        std::lock_guard<std::mutex> lock(shared_mutex);
        auto& p = shared[tag];
        if (!p) {
            p.reset(new double2[(n + 15) / 16]);  // 16-byte aligned
            std::memset(p.get(), 0xFF, n);        // garbage, as fresh shared memory holds
        }
        return p.get();
    }
};
inline thread_local BlockCtx* g_block = nullptr;
inline thread_local std::mt19937_64 emu_rng;

template <class T, int ID>
T& emu_shared() {
    static const char tag = 0;
    return *reinterpret_cast<T*>(g_block->shared_for(&tag, sizeof(T)));
}

inline void emu_sleep_us(unsigned us) {
    if (us) std::this_thread::sleep_for(std::chrono::microseconds(us));
}
// a random delay of up to jitter_us, with probability 1/den
inline void emu_jitter(unsigned den = 1) {
    if (emu_config.jitter_us && emu_rng() % den == 0)
        emu_sleep_us(unsigned(emu_rng() % (emu_config.jitter_us + 1)));
}

inline void __syncthreads() {
    if (threadIdx.x == 0) emu_jitter(8);
    g_block->bar->arrive_and_wait();
}
inline WarpCtx& my_warp() { return *g_block->warps[threadIdx.x / 32]; }
inline void __syncwarp(unsigned = 0xffffffffu) { my_warp().bar.arrive_and_wait(); }
template <class T> T shfl_from(T v, int src_fn_lane) {
    WarpCtx& w = my_warp();
    int lane = threadIdx.x % 32;
    w.buf[lane] = (double)v;
    w.bar.arrive_and_wait();
    double r = w.buf[src_fn_lane];
    w.bar.arrive_and_wait();
    return (T)r;
}
// the optional width (a power of two up to 32) splits the warp into segments of that many lanes
template <class T> T __shfl_up_sync(unsigned, T v, int d, int width = 32) {
    int lane = threadIdx.x % 32;
    return shfl_from(v, lane % width - d >= 0 ? lane - d : lane);
}
template <class T> T __shfl_down_sync(unsigned, T v, int d, int width = 32) {
    int lane = threadIdx.x % 32;
    return shfl_from(v, lane % width + d < width ? lane + d : lane);
}
template <class T> T __shfl_sync(unsigned, T v, int src, int width = 32) {
    int lane = threadIdx.x % 32;
    return shfl_from(v, lane - lane % width + (src & (width - 1)));
}
inline unsigned __ballot_sync(unsigned, int pred) {
    WarpCtx& w = my_warp();
    int lane = threadIdx.x % 32;
    w.bal[lane] = pred ? 1u : 0u;
    w.bar.arrive_and_wait();
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= w.bal[i] << i;
    w.bar.arrive_and_wait();
    return r;
}
inline int __all_sync(unsigned m, int pred) { return __ballot_sync(m, pred) == 0xffffffffu; }
inline int __any_sync(unsigned m, int pred) { return __ballot_sync(m, pred) != 0u; }
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline thread_local long long emu_spins = 0;  // waits in a row of this thread
inline void __nanosleep(unsigned) {
    emu_counters.waits++;
    emu_sleep_us(2);
    if (++emu_spins > 400000) {  // tens of seconds: a wait that can never end
        std::fprintf(stderr, "emulated GPU: block %u waits forever (deadlock)\n", blockIdx.x);
        std::abort();
    }
}
// the tile counter: now and then the block that took a tile stalls (as if descheduled), and
// the tiles after it must wait for it
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    const unsigned r = __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
    if (emu_config.stall_us && emu_rng() % 2 == 0)
        emu_sleep_us(unsigned(emu_rng() % (emu_config.stall_us + 1)));
    return r;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
template <class T> T __ldg(const T* p) { return *p; }
template <class T> T __ldcg(const T* p) { return *p; }
template <class T> void __stcg(T* p, T v) { *p = v; }
// the kernels' release store and acquire load of a flag (st.release.gpu / ld.acquire.gpu)
inline void store_release(int* p, int v) {
    emu_jitter();
    if (v == 2) emu_sleep_us(emu_config.hold_us);
    const int* none = nullptr;
    g_block->own_flag.compare_exchange_strong(none, p);
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
inline int load_acquire(const int* p) {
    int v = __atomic_load_n(p, __ATOMIC_ACQUIRE);
    if (v >= 0 && v <= 2) emu_counters.flag_reads[v]++;
    if (const int* own = g_block->own_flag) emu_max(emu_counters.max_distance, own - p);
    return v;
}

// launch: `resident` slots of `block` threads each; the blocks in a random order
inline void launch(unsigned grid, unsigned block, const std::function<void()>& body) {
    gridDim.x = grid;
    blockDim.x = block;
    std::vector<unsigned> order(grid);
    std::iota(order.begin(), order.end(), 0u);
    std::mt19937_64 shuffle_rng(emu_config.seed);
    std::shuffle(order.begin(), order.end(), shuffle_rng);
    std::atomic<unsigned> next{0};
    const unsigned n_slots = std::max(1u, std::min(emu_config.resident, grid));
    std::vector<std::unique_ptr<BlockCtx>> slots;
    for (unsigned s = 0; s < n_slots; ++s) {
        auto ctx = std::make_unique<BlockCtx>();
        ctx->bar = std::make_unique<std::barrier<>>(block);
        for (unsigned w = 0; w < (block + 31) / 32; ++w)
            ctx->warps.push_back(std::make_unique<WarpCtx>());
        slots.push_back(std::move(ctx));
    }
    std::vector<std::thread> ts;
    ts.reserve(size_t(n_slots) * block);
    for (unsigned s = 0; s < n_slots; ++s) {
        for (unsigned t = 0; t < block; ++t) {
            ts.emplace_back([&, s, t] {
                BlockCtx* ctx = slots[s].get();
                g_block = ctx;
                threadIdx.x = t;
                emu_rng.seed(emu_config.seed * 1000003ull + s * 4099ull + t);
                while (true) {
                    if (t == 0) {
                        const unsigned i = next.fetch_add(1);
                        ctx->done = i >= grid;
                        if (!ctx->done) {
                            ctx->block_id = order[i];
                            ctx->shared.clear();
                            ctx->own_flag = nullptr;
                            emu_jitter();  // blocks start at random moments
                            emu_max(emu_counters.max_resident, ++emu_counters.resident_now);
                            emu_counters.blocks++;
                        }
                    }
                    ctx->bar->arrive_and_wait();
                    if (ctx->done) break;
                    blockIdx.x = ctx->block_id;
                    emu_spins = 0;
                    body();
                    ctx->bar->arrive_and_wait();  // the whole block is done
                    if (t == 0) emu_counters.resident_now--;
                }
            });
        }
    }
    for (auto& th : ts) th.join();
}
