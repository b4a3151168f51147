// stages.cu -- the single-pass scan of chapter 4, built one stage at a time.
//
// Book: "Parallel Scans for Sequence Models", chapter 4. Each stage is a short __device__
// function between "// ---- stage: NAME ----" markers (scanbook.kernels.stages.source(NAME)
// prints one). Every stage is tested by the kernels scan_<f32|f64>_cg<CG>, which run scan_tile
// up to the stage given by their `upto` argument on real data and write what they have, so that
// the chapter checks every stage against NumPy the moment it is introduced; with every stage,
// they are the whole single-pass scan.
//
// A tile is SEGS = ST_BLOCK / CG segments of ITEMS consecutive time steps of CG adjacent
// channels; thread tid owns channel tid % CG of segment tid / CG (lanes CG apart hold
// consecutive segments of one channel). Arrays are (T, C), row-major.
//
// The library's kernel, single_pass.cu, is these stages plus what makes them fast: 16-byte
// vector loads for one channel, a tile staged through shared memory for up to 16 channels,
// warp 0 scanning the warp totals once for the block, and a look-back that polls 128
// predecessors a round trip instead of one and fetches their values with every warp of the
// block; and the fused gradient of chapter 5.

#ifndef ST_BLOCK
#define ST_BLOCK 256  // threads a tile
#endif
#ifndef ST_ITEMS
#define ST_ITEMS 8  // time steps a thread
#endif
#define ST_WARPS (ST_BLOCK / 32)
#define FULL_MASK 0xffffffffu

// release store and acquire load of a flag (as in single_pass.cu; the CPU emulation has its own)
#ifdef __CUDA_ARCH__
__device__ __forceinline__ void store_release(int* p, int v) {
    asm volatile("st.release.gpu.global.b32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ int load_acquire(const int* p) {
    int v;
    asm volatile("ld.acquire.gpu.global.b32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}
#endif

// where a thread's elements are: tile `tile` is time tile j of channel group g
template <int CG>
struct Place {
    long long j, c, t_first;  // time tile, channel, first time step
    __device__ Place(long long tile, long long n_groups) {
        const long long g = tile % n_groups;
        j = tile / n_groups;
        c = g * CG + threadIdx.x % CG;
        t_first = j * (ST_BLOCK / CG) * ST_ITEMS + (threadIdx.x / CG) * ST_ITEMS;
    }
};

// ---- stage: load ----
// ITEMS consecutive steps of channel c into registers. Past the end (t >= n_steps, or a
// channel c >= n_channels of the last group) the value `pad`: the identity map (1, 0) when
// loading (a, b), so that every thread runs the same loops with no test inside them.
template <typename T>
__device__ void load_steps(const T* x, long long n_steps, long long n_channels, long long c,
                           long long t_first, T pad, T (&r)[ST_ITEMS]) {
#pragma unroll
    for (int k = 0; k < ST_ITEMS; ++k) {
        const long long t = t_first + k;
        r[k] = (c < n_channels && t < n_steps) ? x[t * n_channels + c] : pad;
    }
}

// ---- stage: store ----
// the way back: only the elements that exist are written
template <typename T>
__device__ void store_steps(T* y, long long n_steps, long long n_channels, long long c,
                            long long t_first, const T (&r)[ST_ITEMS]) {
#pragma unroll
    for (int k = 0; k < ST_ITEMS; ++k) {
        const long long t = t_first + k;
        if (c < n_channels && t < n_steps) y[t * n_channels + c] = r[k];
    }
}

// ---- stage: reduce ----
// compose the thread's maps in time order: (A, B) <- (a_k, b_k) after (A, B)
template <typename T>
__device__ void reduce_steps(const T (&ra)[ST_ITEMS], const T (&rb)[ST_ITEMS], T& A, T& B) {
    A = T(1);
    B = T(0);
#pragma unroll
    for (int k = 0; k < ST_ITEMS; ++k) {
        B = ra[k] * B + rb[k];
        A = ra[k] * A;
    }
}

// ---- stage: warp_scan ----
// Hillis-Steele over the 32 / CG segments a warp holds of each channel: after round o, lane
// group lp holds the composition of segments lp - 2o + 1 .. lp. The earlier map (A0, B0), from
// o * CG lanes below, is applied first.
template <typename T, int CG>
__device__ void warp_scan(T& A, T& B) {
    const int lp = (threadIdx.x % 32) / CG;  // this lane's segment within the warp
#pragma unroll
    for (int o = 1; o < 32 / CG; o <<= 1) {
        const T A0 = __shfl_up_sync(FULL_MASK, A, o * CG);  // every lane shuffles ...
        const T B0 = __shfl_up_sync(FULL_MASK, B, o * CG);
        if (lp >= o) {  // ... but only those with a segment o below combine
            B = A * B0 + B;
            A = A * A0;
        }
    }
}

// ---- stage: block_scan ----
// From the warp-inclusive (A, B): the map of the tile's segments before this thread's,
// (xa, xb), and the tile's aggregate (ta, tb), through one shared array of warp totals.
template <typename T, int CG>
__device__ void block_scan(T A, T B, T& xa, T& xb, T& ta, T& tb) {
    __shared__ T s_wa[ST_WARPS][CG];
    __shared__ T s_wb[ST_WARPS][CG];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, ch = lane % CG;
    xa = __shfl_up_sync(FULL_MASK, A, CG);  // the segment before mine in the warp
    xb = __shfl_up_sync(FULL_MASK, B, CG);
    if (lane < CG) {  // the warp's first segment: nothing before it in the warp
        xa = T(1);
        xb = T(0);
    }
    if (lane >= 32 - CG) {  // the warp's last segment holds the warp's total
        s_wa[warp][ch] = A;
        s_wb[warp][ch] = B;
    }
    __syncthreads();
    T pa = T(1), pb = T(0);  // the warps before mine
    ta = T(1);
    tb = T(0);
    for (int w = 0; w < ST_WARPS; ++w) {
        if (w == warp) {
            pa = ta;
            pb = tb;
        }
        tb = s_wa[w][ch] * tb + s_wb[w][ch];
        ta = s_wa[w][ch] * ta;
    }
    xb = xa * pb + xb;  // earlier warps first, then the earlier segments of my warp
    xa = xa * pa;
}

// ---- stage: lookback ----
// Warp 0 finds the state entering the tile, channel by channel (lane ch < CG): it publishes
// the tile's aggregate with flag 1, then walks back over the tiles of its channel group, one
// at a time, composing the aggregates of those with flag 1, until one has flag 2 (its state
// after its last step is known); then it publishes its own state with flag 2. Values first,
// then the flag with a release store; the flag read with an acquire load, then the values.
template <typename T, int CG>
__device__ T lookback(long long tile, long long n_groups, T ta, T tb, T h0c, int* flags,
                      T* agg_a, T* agg_b, T* inc_h) {
    const int lane = threadIdx.x;  // warp 0
    T carry = h0c;                 // the first tile of a channel group starts from h0
    if (tile >= n_groups) {
        if (lane < CG) {
            __stcg(agg_a + tile * CG + lane, ta);
            __stcg(agg_b + tile * CG + lane, tb);
        }
        __syncwarp();  // every lane's values before lane 0's flag
        if (lane == 0) store_release(flags + tile, 1);
        T acc_a = T(1), acc_b = T(0);  // the maps between the state found and this tile
        for (long long p = tile - n_groups;; p -= n_groups) {
            int f = 0;
            if (lane == 0) {
                while ((f = load_acquire(flags + p)) == 0) __nanosleep(64);
            }
            f = __shfl_sync(FULL_MASK, f, 0);
            __syncwarp();  // lane 0's acquire before the other lanes' reads
            if (f == 2) {
                if (lane < CG) carry = acc_a * __ldcg(inc_h + p * CG + lane) + acc_b;
                break;
            }
            if (lane < CG) {  // (acc_a, acc_b) <- (acc_a, acc_b) after tile p's aggregate
                acc_b = acc_a * __ldcg(agg_b + p * CG + lane) + acc_b;
                acc_a = acc_a * __ldcg(agg_a + p * CG + lane);
            }
        }
    }
    if (lane < CG) __stcg(inc_h + tile * CG + lane, ta * carry + tb);
    __syncwarp();
    if (lane == 0) store_release(flags + tile, 2);
    return carry;
}

// ---- stage: rescan ----
// run the thread's steps again from the state entering its segment, x; the states go to rb
template <typename T>
__device__ void rescan(T x, const T (&ra)[ST_ITEMS], T (&rb)[ST_ITEMS]) {
#pragma unroll
    for (int k = 0; k < ST_ITEMS; ++k) {
        x = ra[k] * x + rb[k];
        rb[k] = x;
    }
}

// ---- stage: scan ----
// the whole single pass; `upto` stops after a stage and writes what it has (the test kernels)
enum { UPTO_COPY, UPTO_REDUCE, UPTO_WARP, UPTO_BLOCK, UPTO_LOOKBACK, UPTO_ALL };
template <typename T, int CG>
__device__ void scan_tile(int upto, const T* a, const T* b, const T* h0, T* out, T* out2,
                          long long n_steps, long long n_channels, long long n_groups,
                          int* flags, T* agg_a, T* agg_b, T* inc_h, unsigned* counter) {
    __shared__ unsigned s_tile;
    __shared__ T s_carry[CG];
    if (threadIdx.x == 0) s_tile = upto >= UPTO_LOOKBACK ? atomicAdd(counter, 1u) : blockIdx.x;
    __syncthreads();
    const long long tile = s_tile;  // in the order tiles start (look-back: see the text)
    const Place<CG> at(tile, n_groups);
    const long long me = (long long)blockIdx.x * ST_BLOCK + threadIdx.x;  // test outputs
    T ra[ST_ITEMS], rb[ST_ITEMS];
    load_steps(a, n_steps, n_channels, at.c, at.t_first, T(1), ra);
    load_steps(b, n_steps, n_channels, at.c, at.t_first, T(0), rb);
    if (upto == UPTO_COPY) {
        store_steps(out, n_steps, n_channels, at.c, at.t_first, rb);
        return;
    }
    T A, B;
    reduce_steps(ra, rb, A, B);
    if (upto == UPTO_REDUCE) {
        out[me] = A;
        out2[me] = B;
        return;
    }
    warp_scan<T, CG>(A, B);
    if (upto == UPTO_WARP) {
        out[me] = A;
        out2[me] = B;
        return;
    }
    T xa, xb, ta, tb;
    block_scan<T, CG>(A, B, xa, xb, ta, tb);
    if (upto == UPTO_BLOCK) {
        out[me] = xa;
        out2[me] = xb;
        return;
    }
    if (threadIdx.x < 32) {
        const int ch = threadIdx.x % CG;
        const T h0c = at.c < n_channels ? h0[at.c] : T(0);
        const T carry = lookback<T, CG>(tile, n_groups, ta, tb, h0c, flags, agg_a, agg_b, inc_h);
        if (threadIdx.x < CG) s_carry[ch] = carry;
    }
    __syncthreads();
    const T carry = s_carry[threadIdx.x % CG];
    if (upto == UPTO_LOOKBACK) {
        if (threadIdx.x < CG) out[tile * CG + threadIdx.x] = carry;
        return;
    }
    rescan(xa * carry + xb, ra, rb);
    store_steps(out, n_steps, n_channels, at.c, at.t_first, rb);
}

// extern "C" entry points: scan_<f32|f64>_cg<CG>(upto, a, b, h0, out, out2, T, C, n_groups,
// flags, agg_a, agg_b, inc_h, counter), for CG = 1, 2, 4, ..., 32
#define ST_KERNEL(T, SUFFIX, CG)                                                               \
    extern "C" __global__ void __launch_bounds__(ST_BLOCK) scan_##SUFFIX##_cg##CG(            \
        int upto, const T* a, const T* b, const T* h0, T* out, T* out2, long long n_steps,     \
        long long n_channels, long long n_groups, int* flags, T* agg_a, T* agg_b, T* inc_h,   \
        unsigned* counter) {                                                                   \
        scan_tile<T, CG>(upto, a, b, h0, out, out2, n_steps, n_channels, n_groups, flags,     \
                         agg_a, agg_b, inc_h, counter);                                        \
    }
#define ST_ALL_CG(T, SUFFIX) \
    ST_KERNEL(T, SUFFIX, 1)  \
    ST_KERNEL(T, SUFFIX, 2)  \
    ST_KERNEL(T, SUFFIX, 4)  \
    ST_KERNEL(T, SUFFIX, 8)  \
    ST_KERNEL(T, SUFFIX, 16) \
    ST_KERNEL(T, SUFFIX, 32)

ST_ALL_CG(float, f32)
ST_ALL_CG(double, f64)
