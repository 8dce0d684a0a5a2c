/* The float32 tanh and sigmoid every float32 loop uses (_common.h for the
 * recurrent loops, _quant.c for the int8 ones): one definition, so the two
 * paths give the same numbers. */
#ifndef RK_TANH_H
#define RK_TANH_H

/* tanh for float32: the odd/even rational approximation p(x)/q(x) of degree
 * 13/6 on [-7.905, 7.905] (outside it tanh rounds to +-1 in float32).  Plain
 * arithmetic and a clamp written as comparisons, so a loop of it vectorises. */
static inline float rk_tanh_f32(float x)
{
    const float lim = 7.90531110763549805f;
    float xc = x > lim ? lim : x;
    xc = xc < -lim ? -lim : xc;
    const float x2 = xc * xc;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

static inline float rk_sigmoid_f32(float x) { return 0.5f * rk_tanh_f32(0.5f * x) + 0.5f; }

#endif /* RK_TANH_H */
