/* Every BLAS call of mpigan goes through these: row-major CBLAS products whose sizes and
 * leading dimensions are checked first, so that a shape bug is a fatal error naming who
 * (a layer, a metric) and which product, instead of OpenBLAS's parameter message and a
 * result computed from the wrong memory. */
#ifndef MG_BLAS_H
#define MG_BLAS_H

#include <cblas.h>

/* C (m x n) = alpha op(A) op(B) + beta C */
void mg_sgemm_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans_a,
                      enum CBLAS_TRANSPOSE trans_b, int m, int n, int k, float alpha, const float *a,
                      int lda, const float *b, int ldb, float beta, float *c, int ldc);
void mg_dgemm_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans_a,
                      enum CBLAS_TRANSPOSE trans_b, int m, int n, int k, double alpha, const double *a,
                      int lda, const double *b, int ldb, double beta, double *c, int ldc);

/* y (m or n) = alpha op(A) x + beta y, A m x n row-major (lda >= n); op(A) = A gives m
 * entries from x of n, op(A) = A^T gives n entries from x of m */
void mg_sgemv_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int m, int n, float alpha,
                      const float *a, int lda, const float *x, float beta, float *y);

/* lower triangle of C (n x n) = alpha op(A) op(A)^T + beta C, op(A) n x k */
void mg_ssyrk_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int n, int k, float alpha,
                      const float *a, int lda, float beta, float *c, int ldc);
void mg_dsyrk_checked(const char *who, const char *what, enum CBLAS_TRANSPOSE trans, int n, int k, double alpha,
                      const double *a, int lda, double beta, double *c, int ldc);

/* C (m x n) = alpha B S + beta C, S (n x n) symmetric, its lower triangle read */
void mg_dsymm_right_lower_checked(const char *who, const char *what, int m, int n, double alpha, const double *s,
                                  int lds, const double *b, int ldb, double beta, double *c, int ldc);

#endif
