// three_phase.cu -- Martin & Cundy's three-phase parallel linear recurrence, rebuilt.
//
// Book: "Parallel Scans for Sequence Models", chapter 4. Algorithm 1 of Martin & Cundy (2018):
// split time into p slices; (1) reduce every slice to one affine map (P_i, R_i) = (product of
// its decays, its h from a zero state); (2) scan those maps from h0 to get the state C_{i-1}
// entering every slice; (3) rescan every slice from its carry and write h.
//
// The processors are warps: block k of n_blocks owns a contiguous range of time steps, split
// again among its W warps (blockDim.x = 32 W). From 32 channels on, the 32 lanes of a warp take
// channels i, i+32, ... so each load of a warp is one coalesced line across channels. Below 32
// channels that would leave lanes idle (31 of 32 at C = 1), so the lanes form *lane groups* of
// CG lanes (CG: the smallest power of two >= C), 32 / CG groups a warp: lane c of a group takes
// channel c, and group g takes sub-slice g of the warp's slice of time. Lanes CG apart hold the
// same channel, so the groups' maps are combined in order with shuffles (a Hillis-Steele scan
// with __shfl_up_sync); from 32 channels on there is one group, CG = 32, and nothing to combine.
// (A warp's load below 32 channels is then 32 / CG short runs, one a lane group, rather than one
// line: more 32-byte sectors a load, each of them read over STEPS successive loads.)
//
// Latency: a load from memory takes about a microsecond to come back, and the multiply-add
// that needs it waits. The loads of a and b do not depend on the recurrence, so a lane keeps a
// batch of STEPS time steps of both in flight (2 * STEPS loads): it loads a batch into
// registers before it composes it, and the next batch while it composes one, as serial.cu
// does. STEPS is 8 floats or 2 doubles (64 or 32 bytes of loads a lane): with 32 warps of 32
// lanes an SM, 64 or 32 KB in flight an SM, more than an H200 needs at the latency chapter 4
// assumes (Little's law). Four doubles would not fit the 64 registers a thread of a
// 1024-thread block may have: the compiler would spill to local memory.
//
// Fixed against the original kernel (linear_recurrence.cu of the paper's repository):
//   * the multiprocessor count is not hard-coded (15 SMs, a Tesla K40): the host reads it from
//     the device and chooses n_blocks = gridDim.x;
//   * 64-bit indexing: t * n_channels + i is computed in long long, so T * C may pass 2^31;
//   * the scratch buffer is passed in (from CuPy's memory pool) instead of a cudaMalloc and a
//     cudaFree on every call (cudaFree synchronises the device; cudaMalloc may, too);
//   * reverse direction (the backward pass of chapter 5) and the initial state h0 are
//     arguments; h0 enters in phase 2, so phase 1 is the same for every block;
//   * float and double, from one template, under extern "C" names RawModule can find;
//   * every lane busy at any channel count (lane groups), and a batch of loads in flight a
//     lane (above).
//
// Scratch layout: two arrays P, R of n_blocks * (W + 1) * C elements each; entry
// ((k * (W + 1) + w) * C + i) belongs to block k, warp w (w = W: the whole block), channel i.
// Below 32 channels n_blocks * 32 W more follow, one a thread: entry n_blocks * (W + 1) * C +
// k * 32 W + threadIdx.x holds, for the thread's channel, the map of the lane groups before its
// own in its warp (phase 1 writes it, phase 3 applies it to the warp's carry).
// Traffic: phase 1 reads a, b; phase 3 reads them again and writes h: 20 bytes an element in
// float32, against the 12 of a single pass.

// Split n_jobs into n_workers contiguous ranges whose sizes differ by at most one; worker w gets
// [begin, end). The first n_jobs % n_workers workers take one more.
__device__ __forceinline__ void divide_work(long long n_jobs, long long n_workers, long long w,
                                            long long* begin, long long* end) {
    const long long small = n_jobs / n_workers;
    const long long extra = n_jobs % n_workers;
    const long long b = w * small + (w < extra ? w : extra);
    *begin = b;
    *end = b + small + (w < extra ? 1 : 0);
}

// The time range of warp `warp` of block `block` (logical time: reverse is handled by the
// index map below, so every phase reads as a forward scan).
__device__ __forceinline__ void warp_range(long long n_steps, int warp, int n_warps,
                                           long long* begin, long long* end) {
    long long b0, b1, w0, w1;
    divide_work(n_steps, gridDim.x, blockIdx.x, &b0, &b1);
    divide_work(b1 - b0, n_warps, warp, &w0, &w1);
    *begin = b0 + w0;
    *end = b0 + w1;
}

// This lane's lane group: *cg lanes a group (32 from 32 channels on, else the smallest power of
// two >= C), and the group's sub-slice [*begin, *end) of its warp's time range.
__device__ __forceinline__ void lane_range(long long n_steps, long long n_channels, int* cg,
                                           long long* begin, long long* end) {
    int width = 1;
    while (width < 32 && width < n_channels) width <<= 1;
    long long w0, w1, s0, s1;
    warp_range(n_steps, threadIdx.x >> 5, blockDim.x >> 5, &w0, &w1);
    divide_work(w1 - w0, 32 / width, (threadIdx.x & 31) / width, &s0, &s1);
    *cg = width;
    *begin = w0 + s0;
    *end = w0 + s1;
}

// Memory index of logical time t, channel i.
__device__ __forceinline__ long long at(long long t, long long i, long long n_steps,
                                        long long n_channels, int reverse) {
    return (reverse ? n_steps - 1 - t : t) * n_channels + i;
}

// This thread's entry in the lane groups' part of the scratch (below 32 channels).
__device__ __forceinline__ long long group_slot(long long n_channels) {
    const long long n_warps = blockDim.x >> 5;
    return gridDim.x * (n_warps + 1) * n_channels + (long long)blockIdx.x * blockDim.x +
           threadIdx.x;
}

// STEPS time steps of a and b, from memory index idx on (step apart), into registers: all
// 2 * STEPS loads are issued before any of them is used.
template <typename T, int STEPS>
__device__ __forceinline__ void load_steps(const T* __restrict__ a, const T* __restrict__ b,
                                           long long idx, long long step, T (&ra)[STEPS],
                                           T (&rb)[STEPS]) {
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
        ra[k] = __ldg(a + idx + k * step);
        rb[k] = __ldg(b + idx + k * step);
    }
}

// One step (a_t, b_t) at memory index idx: composed into the map (u, v), or applied to the
// state u and written to h.
template <typename T, bool RESCAN>
__device__ __forceinline__ void step_one(T at_, T bt, T* __restrict__ h, long long idx, T& u,
                                         T& v) {
    if constexpr (RESCAN) {
        u = at_ * u + bt;
        h[idx] = u;
    } else {
        u = at_ * u;
        v = at_ * v + bt;
    }
}

// Steps [t0, t1) of channel i, a batch of STEPS at a time: the next batch is loaded before this
// one is used (left to itself, the compiler would issue each load just before its use, and a
// lane would wait a latency every step or two). RESCAN = false composes them into the map
// (u, v) = (P, R); RESCAN = true rescans them from the state u and writes h.
template <typename T, int STEPS, bool RESCAN>
__device__ __forceinline__ void walk_steps(const T* __restrict__ a, const T* __restrict__ b,
                                           T* __restrict__ h, long long t0, long long t1,
                                           long long i, long long n_steps, long long n_channels,
                                           int reverse, T& u, T& v) {
    const long long step = reverse ? -n_channels : n_channels;
    long long idx = at(t0, i, n_steps, n_channels, reverse);
    T na[STEPS], nb[STEPS];  // the next batch, loaded while this one is used
    if (t0 + STEPS <= t1) load_steps<T, STEPS>(a, b, idx, step, na, nb);
    long long t = t0;
    for (; t + STEPS <= t1; t += STEPS, idx += STEPS * step) {
        T ra[STEPS], rb[STEPS];
#pragma unroll
        for (int k = 0; k < STEPS; ++k) {
            ra[k] = na[k];
            rb[k] = nb[k];
        }
        if (t + 2 * STEPS <= t1) load_steps<T, STEPS>(a, b, idx + STEPS * step, step, na, nb);
#pragma unroll
        for (int k = 0; k < STEPS; ++k)
            step_one<T, RESCAN>(ra[k], rb[k], h, idx + k * step, u, v);
    }
#pragma unroll 1
    for (; t < t1; ++t, idx += step)  // the rest
        step_one<T, RESCAN>(__ldg(a + idx), __ldg(b + idx), h, idx, u, v);
}

// Below 32 channels: the maps (*p, *r) of the warp's 32 / cg lane groups combined in order.
// Lanes cg apart hold the same channel, so a Hillis-Steele scan over the distances cg, 2 cg,
// ... leaves in every lane the map of its group and all the groups before it (in the last
// group: the whole warp's); one more shuffle by cg gives each lane the map of the groups
// before its own (*p_before, *r_before: the identity in group 0). Every lane takes part.
template <typename T>
__device__ __forceinline__ void scan_lane_groups(int cg, T* p, T* r, T* p_before, T* r_before) {
    const int lane = threadIdx.x & 31;
    for (int d = cg; d < 32; d <<= 1) {
        const T p1 = __shfl_up_sync(0xffffffffu, *p, d);
        const T r1 = __shfl_up_sync(0xffffffffu, *r, d);
        if (lane >= d) {  // first (p1, r1), the groups before, then (p, r)
            *r = *p * r1 + *r;
            *p = *p * p1;
        }
    }
    const T p1 = __shfl_up_sync(0xffffffffu, *p, cg);
    const T r1 = __shfl_up_sync(0xffffffffu, *r, cg);
    *p_before = lane >= cg ? p1 : T(1);
    *r_before = lane >= cg ? r1 : T(0);
}

// Phase 1: every lane group reduces its sub-slice to (P, R), the groups of a warp combine theirs
// into the warp's map (below 32 channels); then each block combines its W warp results, in
// order, into the block's map at slot W.
template <typename T, int STEPS = sizeof(T) == 4 ? 8 : 2>  // host: three_phase_steps
__device__ void reduce_phase(const T* __restrict__ a, const T* __restrict__ b, T* P, T* R,
                             long long n_steps, long long n_channels, int reverse) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = blockDim.x >> 5;
    const long long base = (long long)blockIdx.x * (n_warps + 1) * n_channels;
    int cg;
    long long t0, t1;
    lane_range(n_steps, n_channels, &cg, &t0, &t1);
    // every lane goes round the loop equally often: the shuffles need the whole warp
    for (long long c0 = 0; c0 < n_channels; c0 += cg) {
        const long long i = c0 + (lane & (cg - 1));
        T p = 1, r = 0;
        if (i < n_channels)
            walk_steps<T, STEPS, false>(a, b, nullptr, t0, t1, i, n_steps, n_channels, reverse,
                                        p, r);
        if (cg < 32) {
            T p_before, r_before;
            scan_lane_groups<T>(cg, &p, &r, &p_before, &r_before);
            if (i < n_channels) {
                P[group_slot(n_channels)] = p_before;
                R[group_slot(n_channels)] = r_before;
            }
        }
        if (i < n_channels && lane >= 32 - cg) {  // the last group holds the warp's map
            P[base + warp * n_channels + i] = p;
            R[base + warp * n_channels + i] = r;
        }
    }
    __syncthreads();  // the warps' results in global memory are visible to the whole block
    for (long long i = threadIdx.x; i < n_channels; i += blockDim.x) {
        T p = 1, r = 0;
        for (int w = 0; w < n_warps; ++w) {
            const T pw = P[base + w * n_channels + i];
            p = pw * p;
            r = pw * r + R[base + w * n_channels + i];
        }
        P[base + (long long)n_warps * n_channels + i] = p;
        R[base + (long long)n_warps * n_channels + i] = r;
    }
}

// Phase 2: one thread per channel scans the n_blocks block maps from h0, serially (n_blocks is
// a few hundred), and overwrites each block's R with the state entering that block, loading
// the maps eight at a time.
template <typename T>
__device__ void block_scan_phase(const T* __restrict__ h0, const T* P, T* R, long long n_channels,
                                 long long n_blocks, int n_warps) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_channels;
         i += stride) {
        T carry = h0[i];
        // MAPS block maps at a time: all their loads out before the first store (a store to R
        // may be the address of a later load, as far as the compiler knows, so it would not
        // move that load above it: one round trip a block map)
        constexpr int MAPS = 8;
        long long k = 0;
        for (; k + MAPS <= n_blocks; k += MAPS) {
            T p[MAPS], r[MAPS];
#pragma unroll
            for (int m = 0; m < MAPS; ++m) {
                const long long idx = ((k + m) * (n_warps + 1) + n_warps) * n_channels + i;
                p[m] = P[idx];
                r[m] = R[idx];
            }
#pragma unroll
            for (int m = 0; m < MAPS; ++m) {
                R[((k + m) * (n_warps + 1) + n_warps) * n_channels + i] = carry;
                carry = p[m] * carry + r[m];
            }
        }
        for (; k < n_blocks; ++k) {  // the last n_blocks % MAPS
            const long long idx = (k * (n_warps + 1) + n_warps) * n_channels + i;
            const T p = P[idx];
            const T r = R[idx];
            R[idx] = carry;
            carry = p * carry + r;
        }
    }
}

// Phase 3: each block turns its carry into one carry per warp (a serial scan over its W warp
// maps); every lane group applies the map of the groups before it to its warp's carry (below
// 32 channels), rescans its sub-slice from there and writes h.
template <typename T, int STEPS = sizeof(T) == 4 ? 8 : 2>
__device__ void downsweep_phase(const T* __restrict__ a, const T* __restrict__ b, const T* P,
                                T* R, T* __restrict__ h, long long n_steps, long long n_channels,
                                int reverse) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = blockDim.x >> 5;
    const long long base = (long long)blockIdx.x * (n_warps + 1) * n_channels;
    for (long long i = threadIdx.x; i < n_channels; i += blockDim.x) {
        T carry = R[base + (long long)n_warps * n_channels + i];
        for (int w = 0; w < n_warps; ++w) {
            const long long idx = base + w * n_channels + i;
            const T p = P[idx];
            const T r = R[idx];
            R[idx] = carry;
            carry = p * carry + r;
        }
    }
    __syncthreads();
    int cg;
    long long t0, t1;
    lane_range(n_steps, n_channels, &cg, &t0, &t1);
    for (long long i = lane & (cg - 1); i < n_channels; i += cg) {
        T x = R[base + warp * n_channels + i];  // the state entering the warp's slice
        if (cg < 32)  // ... and the one entering this lane group's sub-slice
            x = P[group_slot(n_channels)] * x + R[group_slot(n_channels)];
        T unused = T(0);
        walk_steps<T, STEPS, true>(a, b, h, t0, t1, i, n_steps, n_channels, reverse, x, unused);
    }
}

#define THREE_PHASE_KERNELS(T, SUFFIX)                                                  \
    extern "C" __global__ void __launch_bounds__(1024) three_phase_reduce_##SUFFIX(     \
        const T* a, const T* b, T* P, T* R, long long n_steps, long long n_channels,    \
        int reverse) {                                                                  \
        reduce_phase<T>(a, b, P, R, n_steps, n_channels, reverse);                      \
    }                                                                                   \
    extern "C" __global__ void three_phase_block_scan_##SUFFIX(                         \
        const T* h0, const T* P, T* R, long long n_channels, long long n_blocks,        \
        int n_warps) {                                                                  \
        block_scan_phase<T>(h0, P, R, n_channels, n_blocks, n_warps);                   \
    }                                                                                   \
    extern "C" __global__ void __launch_bounds__(1024) three_phase_downsweep_##SUFFIX(  \
        const T* a, const T* b, const T* P, T* R, T* h, long long n_steps,              \
        long long n_channels, int reverse) {                                            \
        downsweep_phase<T>(a, b, P, R, h, n_steps, n_channels, reverse);                \
    }

THREE_PHASE_KERNELS(float, f32)
THREE_PHASE_KERNELS(double, f64)
