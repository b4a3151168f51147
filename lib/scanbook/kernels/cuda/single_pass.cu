// single_pass.cu -- a one-pass linear recurrence with decoupled look-back.
//
// Book: "Parallel Scans for Sequence Models", chapter 4. The design follows Merrill & Garland
// (2016), "Single-pass parallel prefix scan with decoupled look-back", specialised to affine
// maps x -> A x + B: every element (a[t], b[t]) is such a map, and composing "first (A0, B0),
// then (A1, B1)" gives (A1 A0, A1 B0 + B1). The inputs are read once and h written once:
// 12 bytes an element in float32, the traffic of a copy.
//
// Tiles. A block of SP_BLOCK threads scans one tile: CG adjacent channels (CG = 1, 2, 4, ...,
// 32, chosen by the host as the smallest power of two >= min(C, 32)) over L consecutive time
// steps, L = (SP_BLOCK / CG) * ITEMS. Thread `tid` owns channel tid % CG and the ITEMS
// consecutive time steps of segment tid / CG, kept in registers. With CG = 32 each load of a
// warp is one 128-byte line across channels; with C = 1 (CG = 1) a thread reads its ITEMS steps
// with 16-byte vector loads (float4 / double2) when the host says the pointers allow it. A
// scan of up to 16 channels (one channel group, so the tile is one contiguous run of
// memory), and of one channel whose pointers are not aligned, stages the tile through shared
// memory instead (stage_in / stage_out below), the gradient too. Compiled for at most 128
// registers a thread (__launch_bounds__(SP_BLOCK, 2)): two tiles an SM.
//
// Within a tile:
//   1. each thread composes its ITEMS maps serially, in registers;
//   2. a warp scans the maps of its 32 / CG segments with __shfl_up_sync (Hillis-Steele,
//      log2(32 / CG) steps), lanes CG apart holding the same channel;
//   3. the warp totals go through shared memory and warp 0 scans them serially (8 warps);
//   4. the block finds the state entering the tile by the decoupled look-back below (four
//      warps poll, every warp fetches);
//   5. every thread rescans its registers from its own carry and writes h.
//
// Look-back across tiles. Tiles are numbered in the order blocks *start* (an atomic counter,
// not blockIdx.x: the hardware may schedule blocks in any order, and a block must only wait for
// tiles that are already running, or it could wait forever). Tile id = j * n_groups + g for
// time tile j of channel group g, so the predecessor in time of tile id is id - n_groups.
// Every tile publishes, per channel, first its aggregate (A, B) with flag 1, then, once it knows
// the state entering it, its inclusive state (the h after its last step) with flag 2. A tile
// looks back over a window of LB_WIN = 32 * SP_POLLS = 128 predecessors at a time, SP_POLLS
// warps each polling 32 flags, one acquire load a lane: one round trip to L2 sees all of them.
// It takes the nearest with flag 2 once every predecessor nearer than that one has published
// something (polling again until then). Then every warp fetches a share of the values of the
// window up to it (K adjacent predecessors a lane group, all loads issued before any is used:
// one round trip for 128 predecessors in float32, at least 64 in float64), and composes its
// share; warp 0 composes the warps' parts. The state s found enters as the constant map
// (0, s), so the whole composition's B is the state entering the tile. Along one channel group
// the states can thus advance by 128 tiles every two or three round trips to L2, whatever the
// number of channels.
// Values are written, then the flag is set with a release store; readers poll the flag with
// acquire loads and then read the values through L2 (__ldcg), so a flag is never seen before
// its values, and no full fence (__threadfence) is needed anywhere. The flag is a word of its
// own, not packed with its values into one 16-byte store: PTX's memory model treats a vector
// access as separate accesses to its elements, so a reader could see the flag before a value.
//
// The host zeroes the flags and the tile counter before each launch (they live in a scratch
// buffer from CuPy's memory pool) and launches exactly n_tiles blocks.

#ifndef SP_BLOCK
#define SP_BLOCK 256  // threads a tile; the host's SINGLE_PASS_BLOCK must agree
#endif
static_assert(SP_BLOCK % 32 == 0 && SP_BLOCK >= 32 && SP_BLOCK <= 1024, "SP_BLOCK: whole warps");
#define SP_WARPS (SP_BLOCK / 32)
#ifndef SP_POLLS
#define SP_POLLS 4  // warps that poll 32 flags each (the host passes LOOKBACK_WINDOW / 32)
#endif
#define LB_WIN (32 * SP_POLLS)  // the look-back's window: predecessors seen in one round trip
#ifndef SP_LB_BYTES
#define SP_LB_BYTES 64  // bytes of A and of B a lane of the look-back fetches at once, CG = 32
#endif
#define FULL_MASK 0xffffffffu

template <typename T>
struct Vec16;  // the 16-byte vector of T
template <>
struct Vec16<float> {
    typedef float4 type;
    static const int n = 4;
};
template <>
struct Vec16<double> {
    typedef double2 type;
    static const int n = 2;
};

// (A, B) <- (A, B) after (A0, B0): first apply (A0, B0), then (A, B).
template <typename T>
__device__ __forceinline__ void after(T& A, T& B, T A0, T B0) {
    B = A * B0 + B;
    A = A * A0;
}

// (A, B) <- (a, b) after (A, B): extend a composition by a later map (the order of time).
template <typename T>
__device__ __forceinline__ void then(T& A, T& B, T a, T b) {
    B = a * B + b;
    A = a * A;
}

// Publishing and reading a flag. A release store makes every write this thread (and, through
// the __syncwarp before it, its warp) made earlier visible to whoever reads the flag with an
// acquire load; the reader's later loads see them. Neither is a full fence (__threadfence, a
// MEMBAR.SC.GPU): the stores of a tile drain in the background. PTX's st.release.gpu and
// ld.acquire.gpu need sm_70. (On the CPU, the book's tests supply their own two functions.)
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

// ITEMS adjacent elements starting at p (16-byte aligned) into registers r, in logical order:
// REV puts the highest address first. The register index is a compile-time constant after
// unrolling (a run-time index would move r to slow local memory).
template <typename T, typename V, int VN, int ITEMS, bool REV>
__device__ __forceinline__ void load_vec(const T* p, T (&r)[ITEMS]) {
    const V* pv = reinterpret_cast<const V*>(p);
#pragma unroll
    for (int v = 0; v < ITEMS / VN; ++v) {
        V x = __ldg(pv + v);
        const T* px = reinterpret_cast<const T*>(&x);
#pragma unroll
        for (int e = 0; e < VN; ++e) r[REV ? ITEMS - 1 - (v * VN + e) : v * VN + e] = px[e];
    }
}

template <typename T, typename V, int VN, int ITEMS, bool REV>
__device__ __forceinline__ void store_vec(T* p, const T (&r)[ITEMS]) {
    V* pv = reinterpret_cast<V*>(p);
#pragma unroll
    for (int v = 0; v < ITEMS / VN; ++v) {
        V x;
        T* px = reinterpret_cast<T*>(&x);
#pragma unroll
        for (int e = 0; e < VN; ++e) px[e] = r[REV ? ITEMS - 1 - (v * VN + e) : v * VN + e];
        pv[v] = x;
    }
}

// The same, in either direction: `reverse` puts the highest address first.
template <typename T, typename V, int VN, int ITEMS>
__device__ __forceinline__ void load_dir(const T* p, int reverse, T (&r)[ITEMS]) {
    if (reverse) {
        load_vec<T, V, VN, ITEMS, true>(p, r);
    } else {
        load_vec<T, V, VN, ITEMS, false>(p, r);
    }
}

template <typename T, typename V, int VN, int ITEMS>
__device__ __forceinline__ void store_dir(T* p, int reverse, const T (&r)[ITEMS]) {
    if (reverse) {
        store_vec<T, V, VN, ITEMS, true>(p, r);
    } else {
        store_vec<T, V, VN, ITEMS, false>(p, r);
    }
}

// Staging through shared memory. With C <= 16 channels (one channel group) a tile's input is
// one contiguous run of rows x C elements, but a thread's own elements are C apart (ITEMS
// consecutive steps of one channel): its loads would each touch a different 32-byte sector.
// Instead the block copies the whole run into shared memory, 16 bytes a load: a misaligned
// head (a sliced input) and the tail element by element, the middle as aligned vectors, each
// warp's 32 loads 512 adjacent bytes. Every thread then picks its elements out of shared
// memory. One padding element every 32 keeps the lanes of a warp, ITEMS * C elements apart, on
// different banks. The way out is the same in reverse.
__device__ __forceinline__ int padded(int i) { return i + (i >> 5); }

template <typename T, typename V, int VN>
__device__ __forceinline__ void stage_in(const T* __restrict__ src, int n, T* s) {
    const int tid = threadIdx.x;
    const int head = min(n, (int)(((16 - ((unsigned long long)src & 15)) & 15) / sizeof(T)));
    const int nv = (n - head) / VN;
    if (tid < head) s[padded(tid)] = __ldg(src + tid);
    const V* sv = reinterpret_cast<const V*>(src + head);
#pragma unroll 4
    for (int v = tid; v < nv; v += SP_BLOCK) {
        const V x = __ldg(sv + v);
        const T* px = reinterpret_cast<const T*>(&x);
#pragma unroll
        for (int e = 0; e < VN; ++e) s[padded(head + v * VN + e)] = px[e];
    }
    for (int i = head + nv * VN + tid; i < n; i += SP_BLOCK) s[padded(i)] = __ldg(src + i);
}

template <typename T, typename V, int VN>
__device__ __forceinline__ void stage_out(T* __restrict__ dst, int n, const T* s) {
    const int tid = threadIdx.x;
    const int head = min(n, (int)(((16 - ((unsigned long long)dst & 15)) & 15) / sizeof(T)));
    const int nv = (n - head) / VN;
    if (tid < head) dst[tid] = s[padded(tid)];
    V* dv = reinterpret_cast<V*>(dst + head);
#pragma unroll 4
    for (int v = tid; v < nv; v += SP_BLOCK) {
        V x;
        T* px = reinterpret_cast<T*>(&x);
#pragma unroll
        for (int e = 0; e < VN; ++e) px[e] = s[padded(head + v * VN + e)];
        dv[v] = x;
    }
    for (int i = head + nv * VN + tid; i < n; i += SP_BLOCK) dst[i] = s[padded(i)];
}

// GRAD = false: the forward scan, h = scan of (a, b) from h0.
// GRAD = true: the fused gradient of chapter 5 in one pass. With `reverse` the direction of
// the *gradient's* scan (the opposite of the forward pass's) and s its logical time:
//   db[s] = a[s - 1] * db[s - 1] + g[s]   (a shifted by one step: b holds g; db[-1] = 0)
//   da[s] = db[s] * hf[s + 1]             (hf: the forward states; hf[T] = h0, the forward h0)
// h receives db. Reads a, g, hf; writes db, da: 20 bytes an element in float32, where the
// unfused rule (shift a, scan, shift h, multiply) moves about 40.
template <typename T, int CG, int ITEMS, bool GRAD>
__device__ void single_pass_scan(const T* __restrict__ a, const T* __restrict__ b,
                                 const T* __restrict__ h0, T* __restrict__ h,
                                 long long n_steps, long long n_channels, long long n_groups,
                                 int reverse, int vec_ok, int* flags, T* agg_a, T* agg_b,
                                 T* inc_h, unsigned int* counter, const T* __restrict__ hf,
                                 T* __restrict__ da) {
    constexpr int WIN = 32 / CG;         // time segments per warp (of one channel)
    constexpr int SEGS = SP_BLOCK / CG;  // time segments per tile
    constexpr int VN = Vec16<T>::n;
    typedef typename Vec16<T>::type V;
    static_assert(ITEMS % VN == 0, "ITEMS must be a multiple of the vector width");
    // the look-back's fetch: K adjacent predecessors a lane group (SP_LB_BYTES of A and of B a
    // lane at CG = 32: 16 floats or 8 doubles; one at small CG), PW a warp, FETCH the whole
    // block in one pass
    constexpr int KK = (SP_LB_BYTES / (int)sizeof(T)) * CG / 32;
    constexpr int K = KK > 1 ? KK : 1;
    constexpr int PW = K * WIN;
    constexpr int FETCH = PW * SP_WARPS;

    __shared__ unsigned int s_tile;
    __shared__ T s_wa[SP_WARPS][CG];
    __shared__ T s_wb[SP_WARPS][CG];
    __shared__ T s_carry[CG];
    __shared__ T s_pa[SP_WARPS][CG];  // the look-back: each warp's part of a pass
    __shared__ T s_pb[SP_WARPS][CG];
    __shared__ bool s_phas[SP_WARPS];  // whether the part holds data
    __shared__ unsigned s_incl[SP_POLLS];  // the poll's ballots: flag 2, flag 0
    __shared__ unsigned s_none[SP_POLLS];
    // the staged tile (up to 16 channels; a single element otherwise)
    constexpr bool STAGED = CG <= 16;
    constexpr int STAGE = STAGED ? SP_BLOCK * ITEMS + SP_BLOCK * ITEMS / 32 : 1;
    __shared__ T s_a[STAGE];
    __shared__ T s_b[STAGE];

    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int ch = tid % CG;  // channel within the group (= lane % CG, CG divides 32)
    const int seg = tid / CG;  // time segment within the tile
    const int lp = lane / CG;  // time segment within the warp

    if (tid == 0) s_tile = atomicAdd(counter, 1u);
    __syncthreads();
    const long long tile = s_tile;
    // tiles and groups are below 2^31 (the host checks): a 32-bit division is a few inline
    // instructions, a 64-bit one a call that spills registers to the stack
    const long long j = (unsigned)tile / (unsigned)n_groups;
    const long long g = tile - j * n_groups;
    const long long c = g * CG + ch;
    const bool live = c < n_channels;
    const long long t_first = j * ((long long)SEGS * ITEMS) + (long long)seg * ITEMS;

    // ---- load ITEMS steps into registers (identity maps past the end) ----
    T ra[ITEMS], rb[ITEMS];
    const bool vec = (CG == 1) && vec_ok && (t_first + ITEMS <= n_steps);
    // staged through shared memory: the same for the whole block (it has __syncthreads)
    const bool staged = STAGED && !(CG == 1 && vec_ok);
    const long long tile_t0 = j * ((long long)SEGS * ITEMS);  // the tile's first logical step
    const long long rows = min(n_steps - tile_t0, (long long)SEGS * ITEMS);
    const long long row0 = reverse ? n_steps - tile_t0 - rows : tile_t0;  // its first row
    if (vec) {
        // C == 1: the ITEMS steps are adjacent in memory (descending when reverse)
        const long long p0 = reverse ? n_steps - t_first - ITEMS : t_first;
        load_dir<T, V, VN, ITEMS>(a + p0, reverse, ra);
        load_dir<T, V, VN, ITEMS>(b + p0, reverse, rb);
    } else if (staged) {
        stage_in<T, V, VN>(a + row0 * n_channels, (int)(rows * n_channels), s_a);
        stage_in<T, V, VN>(b + row0 * n_channels, (int)(rows * n_channels), s_b);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
            const long long t = t_first + k;
            if (live && t < n_steps) {
                const long long r = reverse ? n_steps - 1 - t : t;  // its row in memory
                const int i = padded((int)((r - row0) * n_channels + ch));
                ra[k] = s_a[i];
                rb[k] = s_b[i];
            } else {
                ra[k] = T(1);
                rb[k] = T(0);
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
            const long long t = t_first + k;
            if (live && t < n_steps) {
                const long long idx = (reverse ? n_steps - 1 - t : t) * n_channels + c;
                ra[k] = __ldg(a + idx);
                rb[k] = __ldg(b + idx);
            } else {
                ra[k] = T(1);
                rb[k] = T(0);
            }
        }
    }

    // memory index of logical step t of channel c (meaningful for live lanes, t < n_steps)
    auto at = [&](long long t) { return (reverse ? n_steps - 1 - t : t) * n_channels + c; };
    if (GRAD) {
        // the decay of step s is a[s - 1]: shift the registers by one step; the first comes
        // from the previous segment (lane - CG) or, at a warp's first segment, from memory
        const T last = __shfl_up_sync(FULL_MASK, ra[ITEMS - 1], CG);
        T first = last;
        if (lp == 0) {
            const bool inside = live && t_first >= 1 && t_first - 1 < n_steps;
            first = inside ? a[at(t_first - 1)] : T(0);
        }
#pragma unroll
        for (int k = ITEMS - 1; k > 0; --k) ra[k] = ra[k - 1];
        ra[0] = first;
#pragma unroll
        for (int k = 0; k < ITEMS; ++k)
            if (t_first + k >= n_steps || !live) ra[k] = T(1);  // padding stays the identity
    }

    // GRAD: this thread's forward states hf, needed only at the end, are loaded now so that
    // their round trip to memory overlaps the tile's scan and look-back
    T rh[ITEMS];
    if constexpr (GRAD) {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) rh[k] = T(0);
        if (vec) {
            load_dir<T, V, VN, ITEMS>(hf + (reverse ? n_steps - t_first - ITEMS : t_first),
                                      reverse, rh);
        } else if (staged) {  // through s_a again, once every thread has its a
            __syncthreads();
            stage_in<T, V, VN>(hf + row0 * n_channels, (int)(rows * n_channels), s_a);
            __syncthreads();
#pragma unroll
            for (int k = 0; k < ITEMS; ++k) {
                const long long t = t_first + k;
                if (live && t < n_steps) {
                    const long long r = reverse ? n_steps - 1 - t : t;
                    rh[k] = s_a[padded((int)((r - row0) * n_channels + ch))];
                }
            }
        } else {
#pragma unroll
            for (int k = 0; k < ITEMS; ++k)
                if (live && t_first + k < n_steps) rh[k] = __ldg(hf + at(t_first + k));
        }
    }

    // ---- 1. compose this thread's maps ----
    T A = T(1), B = T(0);
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) then(A, B, ra[k], rb[k]);

    // ---- 2. inclusive scan over the warp's segments (same channel: lanes CG apart) ----
#pragma unroll
    for (int o = 1; o < WIN; o <<= 1) {
        const T A0 = __shfl_up_sync(FULL_MASK, A, o * CG);
        const T B0 = __shfl_up_sync(FULL_MASK, B, o * CG);
        if (lp >= o) after(A, B, A0, B0);
    }
    // exclusive: the map of the segments before this one in the warp
    T xa = __shfl_up_sync(FULL_MASK, A, CG);
    T xb = __shfl_up_sync(FULL_MASK, B, CG);
    if (lp == 0) {
        xa = T(1);
        xb = T(0);
    }
    if (lp == WIN - 1) {
        s_wa[warp][ch] = A;
        s_wb[warp][ch] = B;
    }
    __syncthreads();

    // ---- 3. warp 0 scans the warp totals and publishes the tile's aggregate ----
    T ta = T(1), tb = T(0);  // warp 0: the tile's aggregate for channel ch
    T carry = T(0);          // warp 0: the state entering this tile, channel ch
    if (warp == 0) {
        if (lane < CG) {
            for (int w = 0; w < SP_WARPS; ++w) {
                const T wa = s_wa[w][lane];
                const T wb = s_wb[w][lane];
                s_wa[w][lane] = ta;  // now the exclusive prefix of warp w
                s_wb[w][lane] = tb;
                if (w == 0) {  // not composed after the identity (see the look-back)
                    ta = wa;
                    tb = wb;
                } else {
                    then(ta, tb, wa, wb);
                }
            }
        }
        ta = __shfl_sync(FULL_MASK, ta, ch);
        tb = __shfl_sync(FULL_MASK, tb, ch);
        if (j == 0) {
            carry = (live && !GRAD) ? h0[c] : T(0);  // the gradient starts from zero
        } else {
            if (lane < CG) {
                __stcg(agg_a + tile * CG + lane, ta);
                __stcg(agg_b + tile * CG + lane, tb);
            }
            __syncwarp();  // the lanes' values before lane 0's release of the flag
            if (lane == 0) store_release(flags + tile, 1);
        }
    }

    // ---- 4. the decoupled look-back: the block polls, every warp fetches ----
    if (j != 0) {  // the same for the whole block: it has __syncthreads
        T acc_a = T(1), acc_b = T(0);  // warp 0: the maps between the found state and this tile
        long long first = tile - n_groups;  // the nearest predecessor of this window
        while (true) {
            // poll a window of LB_WIN predecessors, 32 a warp: warp w reads the flags of window
            // positions 32 i + lane for i = w, w + SP_WARPS, ... < SP_POLLS, one acquire load a
            // lane (an acquire load waits for its own value, so one lane's second poll would
            // cost a second round trip). Positions before tile 0 of the group read as flag 2:
            // tile 0 publishes nothing but its state (flag 2), so the look-back stops at it.
            // Repeat until every predecessor nearer than the nearest finished one has
            // published something; those further back do not matter.
            auto poll = [&](int i) {  // window positions 32 i ... 32 i + 31, by one warp
                const long long mine = first - (long long)(lane + 32 * i) * n_groups;
                const int f = mine >= 0 ? load_acquire(flags + mine) : 2;
                const unsigned incl = __ballot_sync(FULL_MASK, f == 2);
                const unsigned none = __ballot_sync(FULL_MASK, f == 0);
                if (lane == 0) {
                    s_incl[i] = incl;
                    s_none[i] = none;
                }
            };
            int pstar, waiting;
            do {
                if constexpr (SP_WARPS >= SP_POLLS) {
                    if (warp < SP_POLLS) poll(warp);  // the kernel's case: one load a lane
                } else {
                    for (int i = warp; i < SP_POLLS; i += SP_WARPS) poll(i);
                }
                __syncthreads();  // the ballots; the acquires before every warp's reads
                pstar = LB_WIN;    // the nearest predecessor with its state (LB_WIN: none)
                waiting = LB_WIN;  // the nearest that has published nothing yet
                for (int i = SP_POLLS - 1; i >= 0; --i) {
                    if (s_incl[i]) pstar = 32 * i + __ffs(s_incl[i]) - 1;
                    if (s_none[i]) waiting = 32 * i + __ffs(s_none[i]) - 1;
                }
                __syncthreads();  // s_incl, s_none free for the next poll
                if (waiting < pstar) __nanosleep(32);
            } while (waiting < pstar);
            // the values, FETCH predecessors a pass (one pass holds the whole window in
            // float32): warp w takes window positions w * PW ... w * PW + PW - 1 of the pass,
            // lane group lp the K adjacent ones from lp * K, all loads issued before any is
            // used, one round trip. Nearer than pstar: its aggregate; pstar itself: its state s
            // as the constant map (0, s), so that the composition's B is the carry.
            const int upto = pstar < LB_WIN ? pstar + 1 : LB_WIN;  // positions with data
            for (int pass = 0; pass < upto; pass += FETCH) {
                T ea[K], eb[K];
#pragma unroll
                for (int k = 0; k < K; ++k) {
                    const int q = pass + warp * PW + lp * K + k;
                    const long long p = first - (long long)q * n_groups;
                    ea[k] = T(1);
                    eb[k] = T(0);
                    if (q < pstar) {
                        ea[k] = __ldcg(agg_a + p * CG + ch);
                        eb[k] = __ldcg(agg_b + p * CG + ch);
                    } else if (q == pstar && pstar < LB_WIN) {
                        ea[k] = T(0);
                        eb[k] = __ldcg(inc_h + p * CG + ch);
                    }
                }
                // compose: the lane group's K in time order (the furthest back first), then
                // the lane groups, lp (nearer) after lp + o (further back). Positions without
                // data are left out, not composed as the identity (1, 0): a map after it
                // computes A * 0, NaN where a product of decays has overflowed to inf.
                T ma = T(1), mb = T(0);
                bool has = false;
#pragma unroll
                for (int k = K - 1; k >= 0; --k) {
                    if (pass + warp * PW + lp * K + k < upto) {
                        if (has) {
                            then(ma, mb, ea[k], eb[k]);
                        } else {
                            ma = ea[k];
                            mb = eb[k];
                            has = true;
                        }
                    }
                }
#pragma unroll
                for (int o = 1; o < WIN; o <<= 1) {
                    const T oa = __shfl_down_sync(FULL_MASK, ma, o * CG);
                    const T ob = __shfl_down_sync(FULL_MASK, mb, o * CG);
                    const bool ohas = __shfl_down_sync(FULL_MASK, (int)has, o * CG);
                    if (lp + o < WIN && ohas) after(ma, mb, oa, ob);  // (then lp has data too)
                }
                if (lane < CG) {
                    s_pa[warp][lane] = ma;
                    s_pb[warp][lane] = mb;
                }
                if (lane == 0) s_phas[warp] = has;  // lane group 0 has data if any has
                __syncthreads();
                if (warp == 0 && lane < CG) {  // the warps' parts, the nearest (warp 0) first
                    for (int w = 0; w < SP_WARPS; ++w)
                        if (s_phas[w]) after(acc_a, acc_b, s_pa[w][lane], s_pb[w][lane]);
                }
                __syncthreads();  // s_pa, s_pb free for the next pass
            }
            if (pstar < LB_WIN) break;
            first -= (long long)LB_WIN * n_groups;
        }
        carry = acc_b;  // (0, s) composed with the maps after it: the state entering the tile
    }
    if (warp == 0) {
        if (lane < CG) {
            __stcg(inc_h + tile * CG + lane, ta * carry + tb);
            s_carry[lane] = carry;
        }
        __syncwarp();
        if (lane == 0) store_release(flags + tile, 2);
    }
    __syncthreads();

    // ---- 5. rescan the registers from this thread's carry and write h ----
    T x = s_carry[ch];
    x = s_wa[warp][ch] * x + s_wb[warp][ch];  // through the earlier warps of the tile
    x = xa * x + xb;                            // through the earlier segments of the warp
#pragma unroll
    for (int k = 0; k < ITEMS; ++k) {
        x = ra[k] * x + rb[k];
        ra[k] = x;
    }
    if (GRAD) {
        // ra = db. Now rb = hf[s + 1]: this thread's hf shifted down by one step; the last
        // comes from the next segment (lane + CG) or memory; hf[T] is the forward h0
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) rb[k] = rh[k];  // hf, loaded before the look-back
        const T next_first = __shfl_down_sync(FULL_MASK, rb[0], CG);
        const long long t_next = t_first + ITEMS;
        T next = next_first;
        if (lp == WIN - 1) next = (live && t_next < n_steps) ? hf[at(t_next)] : T(0);
#pragma unroll
        for (int k = 0; k < ITEMS - 1; ++k) rb[k] = rb[k + 1];
        rb[ITEMS - 1] = next;
        const T h0c = live ? h0[c] : T(0);
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
            if (t_first + k + 1 == n_steps) rb[k] = h0c;
            rb[k] = ra[k] * rb[k];  // da
        }
        if (vec) {
            store_dir<T, V, VN, ITEMS>(da + (reverse ? n_steps - t_first - ITEMS : t_first),
                                       reverse, rb);
        } else if (!staged) {  // (staged: below, with db)
#pragma unroll
            for (int k = 0; k < ITEMS; ++k)
                if (live && t_first + k < n_steps) da[at(t_first + k)] = rb[k];
        }
    }
    if (vec) {
        store_dir<T, V, VN, ITEMS>(h + (reverse ? n_steps - t_first - ITEMS : t_first), reverse,
                                   ra);
    } else if (staged) {  // s_a, s_b were last read before the barrier after the warp scan
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
            const long long t = t_first + k;
            if (live && t < n_steps) {
                const long long r = reverse ? n_steps - 1 - t : t;
                const int i = padded((int)((r - row0) * n_channels + ch));
                s_a[i] = ra[k];  // h (db for the gradient)
                if (GRAD) s_b[i] = rb[k];  // da
            }
        }
        __syncthreads();
        stage_out<T, V, VN>(h + row0 * n_channels, (int)(rows * n_channels), s_a);
        if (GRAD) stage_out<T, V, VN>(da + row0 * n_channels, (int)(rows * n_channels), s_b);
    } else {
#pragma unroll
        for (int k = 0; k < ITEMS; ++k) {
            const long long t = t_first + k;
            if (live && t < n_steps) h[(reverse ? n_steps - 1 - t : t) * n_channels + c] = ra[k];
        }
    }
}

// extern "C" entry points, one per (dtype, CG): single_pass_f32_cg1 ... single_pass_f64_cg32,
// and the fused gradients single_pass_vjp_f32_cg1 ... single_pass_vjp_f64_cg32.
// ITEMS: 16 floats or 8 doubles a thread (64 bytes of a and of b in registers), 4096 or 2048
// elements a tile.
#define SINGLE_PASS_KERNEL(T, SUFFIX, CG, ITEMS)                                              \
    extern "C" __global__ void __launch_bounds__(SP_BLOCK, 2) single_pass_##SUFFIX##_cg##CG(  \
        const T* a, const T* b, const T* h0, T* h, long long n_steps, long long n_channels,   \
        long long n_groups, int reverse, int vec_ok, int* flags, T* agg_a, T* agg_b,          \
        T* inc_h, unsigned int* counter) {                                                    \
        single_pass_scan<T, CG, ITEMS, false>(a, b, h0, h, n_steps, n_channels, n_groups,    \
                                              reverse, vec_ok, flags, agg_a, agg_b, inc_h,    \
                                              counter, nullptr, nullptr);                     \
    }                                                                                         \
    extern "C" __global__ void __launch_bounds__(SP_BLOCK, 2)                                \
        single_pass_vjp_##SUFFIX##_cg##CG(                                                    \
        const T* a, const T* g, const T* h0, const T* hf, T* db, T* da, long long n_steps,    \
        long long n_channels, long long n_groups, int reverse, int vec_ok, int* flags,        \
        T* agg_a, T* agg_b, T* inc_h, unsigned int* counter) {                                \
        single_pass_scan<T, CG, ITEMS, true>(a, g, h0, db, n_steps, n_channels, n_groups,     \
                                             reverse, vec_ok, flags, agg_a, agg_b, inc_h,     \
                                             counter, hf, da);                                \
    }

#define SINGLE_PASS_ALL_CG(T, SUFFIX, ITEMS) \
    SINGLE_PASS_KERNEL(T, SUFFIX, 1, ITEMS)  \
    SINGLE_PASS_KERNEL(T, SUFFIX, 2, ITEMS)  \
    SINGLE_PASS_KERNEL(T, SUFFIX, 4, ITEMS)  \
    SINGLE_PASS_KERNEL(T, SUFFIX, 8, ITEMS)  \
    SINGLE_PASS_KERNEL(T, SUFFIX, 16, ITEMS) \
    SINGLE_PASS_KERNEL(T, SUFFIX, 32, ITEMS)

SINGLE_PASS_ALL_CG(float, f32, 16)
SINGLE_PASS_ALL_CG(double, f64, 8)
