// serial.cu -- the baseline of Martin & Cundy's Table 1, and the bandwidth ceiling.
//
// Book: "Parallel Scans for Sequence Models", chapter 4 (CUDA C through CuPy RawKernel).
// Loaded by scanbook.kernels.cupy_raw and compiled with NVRTC through cupy.RawModule.
//
// Layout (all kernels of the book): a, b, h are (T, C) row-major, element (t, c) at t*C + c,
// so the channels of one time step are adjacent in memory. Indices are 64-bit (long long):
// T*C may exceed 2^31. No headers are included, so NVRTC compiles this file as it is.

// One thread per channel walks the whole sequence:
//     forward  h[t] = a[t] * h[t-1] + b[t],  h[-1] = h0
//     reverse  h[t] = a[t] * h[t+1] + b[t],  h[T]  = h0
// A warp reads 32 adjacent channels of one time step: one coalesced 128-byte line (float).
//
// Latency. A load takes about a microsecond to come back; the multiply-add that needs it waits.
// The loads of a and b do not depend on h, so the thread loads STEPS time steps of both into
// registers first (2 * STEPS loads in flight at once), and only then runs the recurrence through
// them and stores h. Left to itself, the compiler interleaves each load with its use and a
// thread has only one or two steps in flight; the explicit batch keeps STEPS in flight (the
// machine code shows all the batch's loads ahead of its first FFMA). STEPS is 16 floats or 8
// doubles, 128 bytes of loads a thread: with 256 threads an SM that is 32 KB in flight an SM,
// about what an H200 needs to stream at full bandwidth (Little's law; chapter 4).
#ifndef SERIAL_BLOCK
#define SERIAL_BLOCK 256  // threads a block; the host's SERIAL_BLOCK must agree
#endif

// STEPS time steps of a and b, from memory index idx on (step apart), into registers
template <typename T, int STEPS>
__device__ __forceinline__ void load_batch(const T* __restrict__ a, const T* __restrict__ b,
                                           long long idx, long long step, T (&ra)[STEPS],
                                           T (&rb)[STEPS]) {
#pragma unroll
    for (int k = 0; k < STEPS; ++k) {
        ra[k] = __ldg(a + idx + k * step);
        rb[k] = __ldg(b + idx + k * step);
    }
}

template <typename T, int STEPS>
__device__ void serial_scan(const T* __restrict__ a, const T* __restrict__ b,
                            const T* __restrict__ h0, T* __restrict__ h,
                            long long n_steps, long long n_channels, int reverse) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long step = reverse ? -n_channels : n_channels;
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < n_channels;
         c += stride) {
        T x = h0[c];
        long long idx = reverse ? (n_steps - 1) * n_channels + c : c;
        // two batches in registers: while the recurrence runs through one, the loads of the
        // next are already out (and the first batch's loads go out before any arithmetic)
        T na[STEPS], nb[STEPS];
        if (STEPS <= n_steps) load_batch<T, STEPS>(a, b, idx, step, na, nb);
        long long t = 0;
        for (; t + STEPS <= n_steps; t += STEPS) {
            T ra[STEPS], rb[STEPS];
#pragma unroll
            for (int k = 0; k < STEPS; ++k) {
                ra[k] = na[k];
                rb[k] = nb[k];
            }
            if (t + 2 * STEPS <= n_steps)
                load_batch<T, STEPS>(a, b, idx + STEPS * step, step, na, nb);
#pragma unroll
            for (int k = 0; k < STEPS; ++k) {
                x = ra[k] * x + rb[k];
                h[idx + k * step] = x;
            }
            idx += STEPS * step;
        }
        for (; t < n_steps; ++t) {  // the last n_steps % STEPS steps
            x = __ldg(a + idx) * x + __ldg(b + idx);
            h[idx] = x;
            idx += step;
        }
    }
}

// The ceiling: the same traffic as the recurrence (read a and b, write h: 12 bytes an element
// in float32) with no dependence between elements. 16-byte vector accesses where the host says
// the three pointers are 16-byte aligned (vec_ok), a grid-stride loop, a scalar tail.
template <typename T, typename V, int VN>
__device__ void stream_add(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ h,
                           long long n, int vec_ok) {
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const long long stride = (long long)gridDim.x * blockDim.x;
    long long done = 0;
    if (vec_ok) {
        const long long nv = n / VN;
        const V* av = reinterpret_cast<const V*>(a);
        const V* bv = reinterpret_cast<const V*>(b);
        V* hv = reinterpret_cast<V*>(h);
        for (long long i = tid; i < nv; i += stride) {
            V x = av[i];
            V y = bv[i];
            T* px = reinterpret_cast<T*>(&x);
            const T* py = reinterpret_cast<const T*>(&y);
#pragma unroll
            for (int e = 0; e < VN; ++e) px[e] += py[e];
            hv[i] = x;
        }
        done = nv * VN;
    }
    for (long long i = done + tid; i < n; i += stride) h[i] = a[i] + b[i];
}

extern "C" {

__global__ void __launch_bounds__(SERIAL_BLOCK) serial_f32(
    const float* a, const float* b, const float* h0, float* h, long long n_steps,
    long long n_channels, int reverse) {
    serial_scan<float, 16>(a, b, h0, h, n_steps, n_channels, reverse);
}

__global__ void __launch_bounds__(SERIAL_BLOCK) serial_f64(
    const double* a, const double* b, const double* h0, double* h, long long n_steps,
    long long n_channels, int reverse) {
    serial_scan<double, 8>(a, b, h0, h, n_steps, n_channels, reverse);
}

__global__ void stream_add_f32(const float* a, const float* b, float* h, long long n,
                               int vec_ok) {
    stream_add<float, float4, 4>(a, b, h, n, vec_ok);
}

__global__ void stream_add_f64(const double* a, const double* b, double* h, long long n,
                               int vec_ok) {
    stream_add<double, double2, 2>(a, b, h, n, vec_ok);
}

}  // extern "C"
