/* The constants of the vector logistic 1 / (1 + e^-x) shared by the AVX-512 and AVX2 epilogues
   (oct_avx512_logistic, oct_avx2_logistic): the clamp that keeps 2^n a finite normal float, -log2 e,
   ln 2 in two parts for the Cody-Waite reduction s = x + n ln 2 (the high part has 9 significant
   bits, so n * hi is exact), and e^-s on |s| <= ln2/2 as C0 + C1 s + ... + C5 s^5, a degree-5
   minimax fit (relative error 1.5e-7). */
#ifndef OCT_LOGISTIC_POLY_H
#define OCT_LOGISTIC_POLY_H

#define OCT_LOGISTIC_CLAMP 87.3f
#define OCT_LOGISTIC_NEG_LOG2E (-1.44269504088896341f)
#define OCT_LOGISTIC_LN2_HI 0.693359375f
#define OCT_LOGISTIC_LN2_LO (-2.12194440e-4f)
#define OCT_LOGISTIC_C0 1.000000119e+00f
#define OCT_LOGISTIC_C1 (-9.999998212e-01f)
#define OCT_LOGISTIC_C2 4.999898672e-01f
#define OCT_LOGISTIC_C3 (-1.666718423e-01f)
#define OCT_LOGISTIC_C4 4.190472141e-02f
#define OCT_LOGISTIC_C5 (-8.319786750e-03f)

#endif
