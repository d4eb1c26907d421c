/*
 * mgf_block.h - the kernels of a layer block, in plain C99 (plus GCC/Clang
 * vector extensions where the compiler has them).
 *
 * A block is one layer applied to a whole batch (nn's batch call, see
 * MGF_LAYER in mgf_core.h).  Its forward pass and both halves of its
 * backward pass are the one product below, each with its own operands and
 * its own order of summation.  The invariants, the promise that a block
 * gives the same doubles as micrograd's neurons built row by row:
 *
 *  1. Every sum is taken in one fixed order, the order in which the
 *     unbatched graph takes it, from the start value given in C:
 *       forward      z[n][j]  = b[j] + W[j][0]*x[n][0] + W[j][1]*x[n][1] + ...
 *                    (inputs ascending: micrograd's sum(w*x, b));
 *       weight grads Wg[j][i] = Wg[j][i] + x[N-1][i]*d[N-1][j] + ... + x[0][i]*d[0][j]
 *                    (samples descending: backward meets the last row first);
 *       bias grads   Bg[j]    = Bg[j] + d[N-1][j] + ... + d[0][j];
 *       input grads  Xg[n][i] = Xg[n][i] + W[nout-1][i]*d[n][nout-1] + ... + W[0][i]*d[n][0]
 *                    (neurons descending: a row's neurons were made in order).
 *  2. Each term is one product rounded to a double, then added and rounded:
 *     never a fused multiply-add (the build passes -ffp-contract=off, and
 *     nothing here asks for fma), never reassociated (no -ffast-math).
 *  3. Vectors run across independent sums only (neurons, samples, inputs:
 *     the columns of C), never inside one: a lane holds one sum for all of
 *     its terms.  So the width of the vectors, the blocking and the ISA the
 *     CPU dispatches to change the speed and never a bit of the result.
 *
 * The product: C[r][c] = C[r][c] + A(r, k) * B[k][c] for k = 0..K-1 (up)
 * or K-1..0 (down), A(r, k) = A[r * ars + k * aks].  A tile of 4 rows by
 * two vectors of columns (four with AVX-512's 32 registers) stays in
 * registers while k runs.  mgf_block_gemm
 * takes the widest variant the CPU has: AVX-512 (8 lanes), AVX2 (4), the
 * build's baseline (2: SSE2, NEON), or plain scalar code where the
 * compiler has no vector extensions.
 */
#ifndef MGF_BLOCK_H
#define MGF_BLOCK_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define MGF_BK_VECTORS 1
#if defined(__x86_64__) || defined(__i386__)
#define MGF_BK_X86 1
#endif
#endif

/* The scalar product, the reference every variant equals bit for bit. */
static void mgf_block_gemm_scalar(double *C, int64_t ldc, const double *A, int64_t ars,
                                  int64_t aks, const double *B, int64_t ldb, int64_t M,
                                  int64_t NC, int64_t K, int down) {
    for (int64_t r = 0; r < M; r++) {
        for (int64_t c = 0; c < NC; c++) {
            double acc = C[r * ldc + c];
            for (int64_t t = 0; t < K; t++) {
                const int64_t k = down ? K - 1 - t : t;
                acc = acc + A[r * ars + k * aks] * B[k * ldb + c];
            }
            C[r * ldc + c] = acc;
        }
    }
}

#ifdef MGF_BK_VECTORS
/* One variant per vector width: the template mgf_block_kernel.h, included
 * with its name, its lane count and its target. */
#define MGF_BK_NAME mgf_block_gemm_v2
#define MGF_BK_LANES 2
#define MGF_BK_COLS 2
#define MGF_BK_TARGET
#include "mgf_block_kernel.h"
#ifdef MGF_BK_X86
#define MGF_BK_NAME mgf_block_gemm_v4
#define MGF_BK_LANES 4
#define MGF_BK_COLS 2
#define MGF_BK_TARGET __attribute__((target("avx2")))
#include "mgf_block_kernel.h"
#define MGF_BK_NAME mgf_block_gemm_v8
#define MGF_BK_LANES 8
#define MGF_BK_COLS 4
#define MGF_BK_TARGET __attribute__((target("avx512f")))
#include "mgf_block_kernel.h"
#endif
#endif

/* The variants, widest last: mgf_block_isa_names[k] names level k. */
enum { MGF_ISA_SCALAR = 0, MGF_ISA_BASE = 1, MGF_ISA_AVX2 = 2, MGF_ISA_AVX512 = 3 };
static const char *const mgf_block_isa_names[4] = {"scalar", "baseline", "avx2", "avx512"};

/* The widest level this build and this CPU have. */
static inline int mgf_block_isa_best(void) {
#if defined(MGF_BK_X86)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return MGF_ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return MGF_ISA_AVX2;
    return MGF_ISA_BASE;
#elif defined(MGF_BK_VECTORS)
    return MGF_ISA_BASE;
#else
    return MGF_ISA_SCALAR;
#endif
}

/* The level in use (-1: not chosen yet; set by mgf_block_isa_set). */
static int mgf_block_isa = -1;

/* Use level k, or the best one when k is out of range or above it; returns
 * the level now in use. */
static inline int mgf_block_isa_set(int k) {
    const int best = mgf_block_isa_best();
    mgf_block_isa = (k < 0 || k > best) ? best : k;
    return mgf_block_isa;
}

static inline void mgf_block_gemm(double *C, int64_t ldc, const double *A, int64_t ars,
                                  int64_t aks, const double *B, int64_t ldb, int64_t M,
                                  int64_t NC, int64_t K, int down) {
    if (mgf_block_isa < 0) mgf_block_isa_set(-1);
    switch (mgf_block_isa) {
#ifdef MGF_BK_X86
    case MGF_ISA_AVX512:
        mgf_block_gemm_v8(C, ldc, A, ars, aks, B, ldb, M, NC, K, down);
        return;
    case MGF_ISA_AVX2:
        mgf_block_gemm_v4(C, ldc, A, ars, aks, B, ldb, M, NC, K, down);
        return;
#endif
#ifdef MGF_BK_VECTORS
    case MGF_ISA_BASE:
        mgf_block_gemm_v2(C, ldc, A, ars, aks, B, ldb, M, NC, K, down);
        return;
#endif
    default:
        mgf_block_gemm_scalar(C, ldc, A, ars, aks, B, ldb, M, NC, K, down);
    }
}

/* Bias grads: Bg[j] = Bg[j] + d[N-1][j] + ... + d[0][j] (lanes across j). */
static inline void mgf_block_bias_grad(double *Bg, const double *D, int64_t N, int64_t nout) {
    for (int64_t n = N - 1; n >= 0; n--) {
        const double *d = D + n * nout;
        for (int64_t j = 0; j < nout; j++) Bg[j] = Bg[j] + d[j];
    }
}

#endif /* MGF_BLOCK_H */
