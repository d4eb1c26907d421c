# Declarations of csrc/mgf_block.h (the kernels of a layer block) for Cython.

from libc.stdint cimport int64_t


cdef extern from "mgf_block.h" nogil:
    enum:
        MGF_ISA_SCALAR
        MGF_ISA_BASE
        MGF_ISA_AVX2
        MGF_ISA_AVX512
    const char *const mgf_block_isa_names[]
    int mgf_block_isa
    int mgf_block_isa_best()
    int mgf_block_isa_set(int k)
    void mgf_block_gemm(double *C, int64_t ldc, const double *A, int64_t ars, int64_t aks,
                        const double *B, int64_t ldb, int64_t M, int64_t NC, int64_t K,
                        int down)
