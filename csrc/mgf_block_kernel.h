/*
 * mgf_block_kernel.h - the template of mgf_block.h's product, included
 * there once per vector width (no include guard, on purpose).  Before each
 * inclusion: MGF_BK_NAME (the function's name), MGF_BK_LANES (doubles per
 * vector), MGF_BK_COLS (vectors of columns per tile) and MGF_BK_TARGET (its
 * target attribute, or nothing).
 *
 * C[r][c] = C[r][c] + A(r, k) * B[k][c], k up or down (see mgf_block.h):
 * tiles of 4 rows by MGF_BK_COLS vectors of columns held in registers while
 * k runs, then tiles of 4 rows by one vector, then the columns left one at
 * a time; then the rows left, one at a time, the same way.  In each, every
 * element sums its terms in the same order, one product and one sum per
 * term: the tiling changes the speed, never a bit of the result.
 */
#define MGF_BK_V_ MGF_BK_LANES
#ifndef MGF_BK_ROWS
#define MGF_BK_ROWS 4
#endif
#define MGF_BK_R_ MGF_BK_ROWS

/* One tile: rows r .. r + R - 1 (R of them), columns c .. c + U * V - 1. */
#define MGF_BK_TILE_(R, U)                                                        \
    do {                                                                          \
        vt s_[R][U];                                                              \
        int i_, u_;                                                               \
        for (i_ = 0; i_ < (R); i_++)                                              \
            for (u_ = 0; u_ < (U); u_++)                                          \
                memcpy(&s_[i_][u_], C + (r + i_) * ldc + c + u_ * MGF_BK_V_, sizeof(vt)); \
        for (t = 0, k = k0; t < K; t++, k += ks) {                                \
            const double *ak_ = A + r * ars + k * aks, *bk_ = B + k * ldb + c;     \
            vt b_[U];                                                             \
            for (u_ = 0; u_ < (U); u_++) memcpy(&b_[u_], bk_ + u_ * MGF_BK_V_, sizeof(vt)); \
            for (i_ = 0; i_ < (R); i_++) {                                        \
                const double x_ = ak_[i_ * ars];                                  \
                for (u_ = 0; u_ < (U); u_++) s_[i_][u_] = s_[i_][u_] + x_ * b_[u_]; \
            }                                                                     \
        }                                                                         \
        for (i_ = 0; i_ < (R); i_++)                                              \
            for (u_ = 0; u_ < (U); u_++)                                          \
                memcpy(C + (r + i_) * ldc + c + u_ * MGF_BK_V_, &s_[i_][u_], sizeof(vt)); \
    } while (0)

/* One element: C[r][c], alone. */
#define MGF_BK_ONE_(rr, cc)                                                       \
    do {                                                                          \
        double s_ = C[(rr) * ldc + (cc)];                                         \
        for (t = 0, k = k0; t < K; t++, k += ks)                                  \
            s_ = s_ + A[(rr) * ars + k * aks] * B[k * ldb + (cc)];                \
        C[(rr) * ldc + (cc)] = s_;                                                \
    } while (0)

MGF_BK_TARGET static void MGF_BK_NAME(double *C, int64_t ldc, const double *A, int64_t ars,
                                      int64_t aks, const double *B, int64_t ldb, int64_t M,
                                      int64_t NC, int64_t K, int down) {
    typedef double vt __attribute__((vector_size(MGF_BK_V_ * sizeof(double))));
    const int64_t WU = MGF_BK_COLS * MGF_BK_V_;
    const int64_t k0 = down ? K - 1 : 0, ks = down ? -1 : 1;
    int64_t r = 0, c, t, k, i;
    for (; r + MGF_BK_R_ <= M; r += MGF_BK_R_) {
        for (c = 0; c + WU <= NC; c += WU) MGF_BK_TILE_(MGF_BK_R_, MGF_BK_COLS);
        for (; c + MGF_BK_V_ <= NC; c += MGF_BK_V_) MGF_BK_TILE_(MGF_BK_R_, 1);
        for (; c < NC; c++)
            for (i = 0; i < MGF_BK_R_; i++) MGF_BK_ONE_(r + i, c);
    }
    for (; r < M; r++) {
        for (c = 0; c + WU <= NC; c += WU) MGF_BK_TILE_(1, MGF_BK_COLS);
        for (; c + MGF_BK_V_ <= NC; c += MGF_BK_V_) MGF_BK_TILE_(1, 1);
        for (; c < NC; c++) MGF_BK_ONE_(r, c);
    }
}

#undef MGF_BK_TILE_
#undef MGF_BK_ONE_
#undef MGF_BK_V_
#undef MGF_BK_R_
#undef MGF_BK_ROWS
#undef MGF_BK_NAME
#undef MGF_BK_LANES
#undef MGF_BK_COLS
#undef MGF_BK_TARGET
