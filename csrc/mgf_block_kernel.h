/*
 * mgf_block_kernel.h - the template of mgf_block.h's product, included
 * there once per vector width (no include guard, on purpose).  Before each
 * inclusion: MGF_BK_NAME (the function's name), MGF_BK_LANES (doubles per
 * vector) and MGF_BK_TARGET (its target attribute, or nothing).
 *
 * C[r][c] = C[r][c] + A(r, k) * B[k][c], k up or down (see mgf_block.h):
 * tiles of 4 rows by 2 vectors of columns, then the rows left one at a
 * time, then the columns left one at a time; in each, every element sums
 * its terms in the same order, one product and one sum per term.
 */
#define MGF_BK_V_ MGF_BK_LANES

MGF_BK_TARGET static void MGF_BK_NAME(double *C, int64_t ldc, const double *A, int64_t ars,
                                      int64_t aks, const double *B, int64_t ldb, int64_t M,
                                      int64_t NC, int64_t K, int down) {
    typedef double vt __attribute__((vector_size(MGF_BK_V_ * sizeof(double))));
    const int64_t W2 = 2 * MGF_BK_V_;
    const int64_t k0 = down ? K - 1 : 0, ks = down ? -1 : 1;
    int64_t r = 0, c, t, k;
    for (; r + 4 <= M; r += 4) {
        double *c0 = C + r * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
        const double *a = A + r * ars;
        for (c = 0; c + W2 <= NC; c += W2) {
            vt s00, s01, s10, s11, s20, s21, s30, s31;
            memcpy(&s00, c0 + c, sizeof(vt)); memcpy(&s01, c0 + c + MGF_BK_V_, sizeof(vt));
            memcpy(&s10, c1 + c, sizeof(vt)); memcpy(&s11, c1 + c + MGF_BK_V_, sizeof(vt));
            memcpy(&s20, c2 + c, sizeof(vt)); memcpy(&s21, c2 + c + MGF_BK_V_, sizeof(vt));
            memcpy(&s30, c3 + c, sizeof(vt)); memcpy(&s31, c3 + c + MGF_BK_V_, sizeof(vt));
            for (t = 0, k = k0; t < K; t++, k += ks) {
                const double *ak = a + k * aks, *bk = B + k * ldb + c;
                vt b0, b1;
                const double x0 = ak[0], x1 = ak[ars], x2 = ak[2 * ars], x3 = ak[3 * ars];
                memcpy(&b0, bk, sizeof(vt));
                memcpy(&b1, bk + MGF_BK_V_, sizeof(vt));
                s00 = s00 + x0 * b0; s01 = s01 + x0 * b1;
                s10 = s10 + x1 * b0; s11 = s11 + x1 * b1;
                s20 = s20 + x2 * b0; s21 = s21 + x2 * b1;
                s30 = s30 + x3 * b0; s31 = s31 + x3 * b1;
            }
            memcpy(c0 + c, &s00, sizeof(vt)); memcpy(c0 + c + MGF_BK_V_, &s01, sizeof(vt));
            memcpy(c1 + c, &s10, sizeof(vt)); memcpy(c1 + c + MGF_BK_V_, &s11, sizeof(vt));
            memcpy(c2 + c, &s20, sizeof(vt)); memcpy(c2 + c + MGF_BK_V_, &s21, sizeof(vt));
            memcpy(c3 + c, &s30, sizeof(vt)); memcpy(c3 + c + MGF_BK_V_, &s31, sizeof(vt));
        }
        for (; c < NC; c++) {
            double s0 = c0[c], s1 = c1[c], s2 = c2[c], s3 = c3[c];
            for (t = 0, k = k0; t < K; t++, k += ks) {
                const double *ak = a + k * aks, bk = B[k * ldb + c];
                s0 = s0 + ak[0] * bk;
                s1 = s1 + ak[ars] * bk;
                s2 = s2 + ak[2 * ars] * bk;
                s3 = s3 + ak[3 * ars] * bk;
            }
            c0[c] = s0; c1[c] = s1; c2[c] = s2; c3[c] = s3;
        }
    }
    for (; r < M; r++) {
        double *c0 = C + r * ldc;
        const double *a = A + r * ars;
        for (c = 0; c + W2 <= NC; c += W2) {
            vt s0, s1;
            memcpy(&s0, c0 + c, sizeof(vt));
            memcpy(&s1, c0 + c + MGF_BK_V_, sizeof(vt));
            for (t = 0, k = k0; t < K; t++, k += ks) {
                const double x0 = a[k * aks];
                const double *bk = B + k * ldb + c;
                vt b0, b1;
                memcpy(&b0, bk, sizeof(vt));
                memcpy(&b1, bk + MGF_BK_V_, sizeof(vt));
                s0 = s0 + x0 * b0;
                s1 = s1 + x0 * b1;
            }
            memcpy(c0 + c, &s0, sizeof(vt));
            memcpy(c0 + c + MGF_BK_V_, &s1, sizeof(vt));
        }
        for (; c < NC; c++) {
            double s0 = c0[c];
            for (t = 0, k = k0; t < K; t++, k += ks) s0 = s0 + a[k * aks] * B[k * ldb + c];
            c0[c] = s0;
        }
    }
}

#undef MGF_BK_V_
#undef MGF_BK_NAME
#undef MGF_BK_LANES
#undef MGF_BK_TARGET
