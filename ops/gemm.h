/* ops/gemm.h — nabla's own sgemm driver over BLIS's micro-kernels.
 *
 * BLIS's gemm front end costs microseconds per call (thread decorator,
 * control tree, and with the OpenMP build a parallel region that makes
 * libgomp allocate a team on the heap at one thread). The products of a
 * training step are small and many, so nabla packs and blocks itself and
 * calls only the micro-kernel BLIS chose for this CPU. Internal to ops/. */
#ifndef NABLA_OPS_GEMM_H
#define NABLA_OPS_GEMM_H

#include <stdbool.h>
#include <stddef.h>

/* Floats of workspace nb__sgemm needs for an m x n x k product. */
size_t nb__gemm_workspace(size_t m, size_t n, size_t k);

/* C = alpha·A·B + beta·C with general strides: A(i,p) = a[i*rsa + p*csa],
 * B(p,j) = b[p*rsb + j*csb], C(i,j) = c[i*rsc + j*csc]. beta = 0 never
 * reads C. work holds nb__gemm_workspace(m, n, k) floats, 64-byte aligned.
 * Runs on nabla's threads when the product is large enough; each element
 * of C is computed by one thread in the same order whatever their number. */
void nb__sgemm(size_t m, size_t n, size_t k, float alpha, const float *a, ptrdiff_t rsa,
               ptrdiff_t csa, const float *b, ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c,
               ptrdiff_t rsc, ptrdiff_t csc, float *work);

/* The same, shared by the nt threads of a parallel region already open:
 * every thread calls it with its tid and the same arguments, and they meet
 * at barriers inside. Each element of C is computed by one thread, in the
 * same order as nb__sgemm's. */
void nb__sgemm_team(size_t m, size_t n, size_t k, float alpha, const float *a, ptrdiff_t rsa,
                    ptrdiff_t csa, const float *b, ptrdiff_t rsb, ptrdiff_t csb, float beta, float *c,
                    ptrdiff_t rsc, ptrdiff_t csc, float *work, int tid, int nt);

/* ---- ops/gemm_direct.c: small products without packing ---- */

/* Whether this CPU runs the direct kernels (AVX-512F). */
bool nb__gemm_direct_available(void);

/* Columns [j0, j1) of C = A·B (add false) or C += A·B (add true), for C
 * m x n row-major (ldc), A(i,p) = a[i*rsa + p*csa] and B k x n row-major
 * (ldb). Only where nb__gemm_direct_available(). */
void nb__sgemm_direct(size_t m, size_t j0, size_t j1, size_t k, const float *a, ptrdiff_t rsa, ptrdiff_t csa,
                      const float *b, ptrdiff_t ldb, bool add, float *c, ptrdiff_t ldc);


#endif
