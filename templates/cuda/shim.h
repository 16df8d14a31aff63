// snngen host shim: compile the generated CUDA C as plain C++ for the CPU (g++), for checks.
//
// Execution model: the launcher runs every (block, thread) of a 2-D grid one after another,
// each thread to completion. Each thread is a warp whose only active lane is itself, so
// warp-level code must be written for an arbitrary active mask (the generated code is).
// Kernels of snngen communicate only through global memory and atomics; there is no
// __shared__ data flow and no __syncthreads() in them.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

using std::isfinite;
using std::max;
using std::min;

struct snn_dim3 { unsigned int x, y, z; };
static snn_dim3 threadIdx, blockIdx, blockDim, gridDim;

// atomics: read-modify-write; sequential execution makes them trivially atomic
template <class T> static inline T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
template <class T> static inline T atomicCAS(T* p, T cmp, T v) {
    T o = *p;
    if (o == cmp) *p = v;
    return o;
}

// IEEE operations that CUDA never fuses into FMAs (the host build uses -ffp-contract=off)
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dsub_rn(double a, double b) { return a - b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }

static inline unsigned int __activemask() { return 1u << (threadIdx.x & 31u); }
static inline int __ffs(unsigned int x) { return __builtin_ffs((int)x); }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
template <class T> static inline T __shfl_sync(unsigned int, T v, int src) {
    if ((unsigned int)src != (threadIdx.x & 31u)) {
        std::fprintf(stderr, "snngen host shim: __shfl_sync from another lane\n");
        std::abort();
    }
    return v;
}

#define SNN_HOST_LAUNCH(kernel, gx, gy, bx, ...)                                   \
    do {                                                                           \
        gridDim = snn_dim3{(unsigned)(gx), (unsigned)(gy), 1u};                    \
        blockDim = snn_dim3{(unsigned)(bx), 1u, 1u};                               \
        for (unsigned by_ = 0; by_ < gridDim.y; ++by_)                             \
            for (unsigned bx_ = 0; bx_ < gridDim.x; ++bx_)                         \
                for (unsigned tx_ = 0; tx_ < blockDim.x; ++tx_) {                  \
                    blockIdx = snn_dim3{bx_, by_, 0u};                             \
                    threadIdx = snn_dim3{tx_, 0u, 0u};                             \
                    kernel(__VA_ARGS__);                                           \
                }                                                                  \
    } while (0)
