// three_phase.cu -- Martin & Cundy's three-phase parallel linear recurrence, rebuilt.
//
// Book: "Parallel Scans for Sequence Models", chapter 4. Algorithm 1 of Martin & Cundy (2018):
// split time into p slices; (1) reduce every slice to one affine map (P_i, R_i) = (product of
// its decays, its h from a zero state); (2) scan those maps from h0 to get the state C_{i-1}
// entering every slice; (3) rescan every slice from its carry and write h.
//
// The processors are warps: block k of n_blocks owns a contiguous range of time steps, split
// again among its W warps (blockDim.x = 32 W). The 32 lanes of a warp take channels i, i+32, ...
// so each load of a warp is one coalesced line across channels.
//
// Fixed against the original kernel (linear_recurrence.cu of the paper's repository):
//   * the multiprocessor count is not hard-coded (15 SMs, a Tesla K40): the host reads it from
//     the device and chooses n_blocks = gridDim.x;
//   * 64-bit indexing: t * n_channels + i is computed in long long, so T * C may pass 2^31;
//   * the scratch buffer is passed in (from CuPy's memory pool) instead of a cudaMalloc and a
//     cudaFree on every call (cudaFree synchronises the device; cudaMalloc may, too);
//   * reverse direction (the backward pass of chapter 5) and the initial state h0 are
//     arguments; h0 enters in phase 2, so phase 1 is the same for every block;
//   * float and double, from one template, under extern "C" names RawModule can find.
//
// Scratch layout: two arrays P, R of n_blocks * (W + 1) * C elements each; entry
// ((k * (W + 1) + w) * C + i) belongs to block k, warp w (w = W: the whole block), channel i.
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

// Memory index of logical time t, channel i.
__device__ __forceinline__ long long at(long long t, long long i, long long n_steps,
                                        long long n_channels, int reverse) {
    return (reverse ? n_steps - 1 - t : t) * n_channels + i;
}

// Phase 1: every warp reduces its slice to (P, R); then each block combines its W warp
// results, in order, into the block's map at slot W.
template <typename T>
__device__ void reduce_phase(const T* __restrict__ a, const T* __restrict__ b, T* P, T* R,
                             long long n_steps, long long n_channels, int reverse) {
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    const int n_warps = blockDim.x >> 5;
    const long long base = (long long)blockIdx.x * (n_warps + 1) * n_channels;
    long long t0, t1;
    warp_range(n_steps, warp, n_warps, &t0, &t1);
    for (long long i = lane; i < n_channels; i += 32) {
        T p = 1, r = 0;
        for (long long t = t0; t < t1; ++t) {
            const long long idx = at(t, i, n_steps, n_channels, reverse);
            const T at_ = a[idx];
            p = at_ * p;
            r = at_ * r + b[idx];
        }
        P[base + warp * n_channels + i] = p;
        R[base + warp * n_channels + i] = r;
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
// a few hundred), and overwrites each block's R with the state entering that block.
template <typename T>
__device__ void block_scan_phase(const T* __restrict__ h0, const T* P, T* R, long long n_channels,
                                 long long n_blocks, int n_warps) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n_channels;
         i += stride) {
        T carry = h0[i];
        for (long long k = 0; k < n_blocks; ++k) {
            const long long idx = (k * (n_warps + 1) + n_warps) * n_channels + i;
            const T p = P[idx];
            const T r = R[idx];
            R[idx] = carry;
            carry = p * carry + r;
        }
    }
}

// Phase 3: each block turns its carry into one carry per warp (a serial scan over its W warp
// maps), then every warp rescans its slice from its carry and writes h.
template <typename T>
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
    long long t0, t1;
    warp_range(n_steps, warp, n_warps, &t0, &t1);
    for (long long i = lane; i < n_channels; i += 32) {
        T x = R[base + warp * n_channels + i];
        for (long long t = t0; t < t1; ++t) {
            const long long idx = at(t, i, n_steps, n_channels, reverse);
            x = a[idx] * x + b[idx];
            h[idx] = x;
        }
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
