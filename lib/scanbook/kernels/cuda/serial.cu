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
// The loads of a and b do not depend on h, so the unrolled loop issues several time steps of
// loads before the first multiply-add needs them (the __restrict__ qualifiers allow it).
template <typename T>
__device__ void serial_scan(const T* __restrict__ a, const T* __restrict__ b,
                            const T* __restrict__ h0, T* __restrict__ h,
                            long long n_steps, long long n_channels, int reverse) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < n_channels;
         c += stride) {
        T x = h0[c];
        long long idx = reverse ? (n_steps - 1) * n_channels + c : c;
        const long long step = reverse ? -n_channels : n_channels;
#pragma unroll 8
        for (long long t = 0; t < n_steps; ++t) {
            x = a[idx] * x + b[idx];
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

__global__ void serial_f32(const float* a, const float* b, const float* h0, float* h,
                           long long n_steps, long long n_channels, int reverse) {
    serial_scan<float>(a, b, h0, h, n_steps, n_channels, reverse);
}

__global__ void serial_f64(const double* a, const double* b, const double* h0, double* h,
                           long long n_steps, long long n_channels, int reverse) {
    serial_scan<double>(a, b, h0, h, n_steps, n_channels, reverse);
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
