// Minimal CPU emulation of the CUDA features used by scanbook's kernels: threads of one block
// run as std::threads; blocks run one after another.
#pragma once
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
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
#define __shared__ static
struct dim3 { unsigned x = 1, y = 1, z = 1; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline thread_local dim3 threadIdx;
inline dim3 blockIdx, blockDim, gridDim;
struct WarpCtx {
    std::barrier<> bar{32};
    double buf[32];
    unsigned bal[32];
};
struct BlockCtx {
    std::unique_ptr<std::barrier<>> bar;
    std::vector<std::unique_ptr<WarpCtx>> warps;
};
inline BlockCtx* g_block = nullptr;
inline void __syncthreads() { g_block->bar->arrive_and_wait(); }
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
template <class T> T __shfl_up_sync(unsigned, T v, int d) {
    int lane = threadIdx.x % 32;
    return shfl_from(v, lane - d >= 0 ? lane - d : lane);
}
template <class T> T __shfl_down_sync(unsigned, T v, int d) {
    int lane = threadIdx.x % 32;
    return shfl_from(v, lane + d < 32 ? lane + d : lane);
}
template <class T> T __shfl_sync(unsigned, T v, int src) { return shfl_from(v, src & 31); }
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
inline int __ffs(unsigned x) { return __builtin_ffs((int)x); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __nanosleep(unsigned) { std::this_thread::yield(); }
inline unsigned atomicAdd(unsigned* p, unsigned v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
template <class T> T __ldg(const T* p) { return *p; }
template <class T> T __ldcg(const T* p) { return *p; }
template <class T> void __stcg(T* p, T v) { *p = v; }
// launch: blocks one after another; after_block(b) runs between blocks
inline void launch(unsigned grid, unsigned block, const std::function<void()>& body,
                   const std::function<void(unsigned)>& after_block = nullptr) {
    gridDim.x = grid;
    blockDim.x = block;
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx.x = b;
        BlockCtx ctx;
        ctx.bar = std::make_unique<std::barrier<>>(block);
        for (unsigned w = 0; w < (block + 31) / 32; ++w)
            ctx.warps.push_back(std::make_unique<WarpCtx>());
        g_block = &ctx;
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < block; ++t)
            ts.emplace_back([t, &body] { threadIdx.x = t; body(); });
        for (auto& th : ts) th.join();
        if (after_block) after_block(b);
    }
}
