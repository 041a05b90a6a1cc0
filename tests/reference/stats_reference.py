"""Independent reference values for src/stats (scipy / statsmodels / numpy).

Run: python3 tests/reference/stats_reference.py
Every number printed here is pasted into a unit test in src/stats/*.rs with
a comment naming the call that produced it. Versions used: see the header.
"""
from fractions import Fraction
from math import comb

import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_confint

print(f"# numpy {np.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}")

print("## Wilson two-sided: proportion_confint(x, n, alpha=1-c, method='wilson')")
for x, n, c in [(0, 10, 0.95), (1, 10, 0.95), (7, 10, 0.95), (10, 10, 0.95),
                (81, 100, 0.95), (950, 1000, 0.99), (3, 7, 0.90), (1, 1, 0.95)]:
    lo, hi = proportion_confint(x, n, alpha=1 - c, method="wilson")
    print(f"({x}, {n}, {c}, {lo!r}, {hi!r}),")

print("## Wilson one-sided: proportion_confint(x, n, alpha=2*(1-c), method='wilson')")
for x, n, c in [(7, 10, 0.95), (81, 100, 0.95), (950, 1000, 0.99)]:
    lo, hi = proportion_confint(x, n, alpha=2 * (1 - c), method="wilson")
    print(f"({x}, {n}, {c}, {lo!r}, {hi!r}),")

print("## t interval: scipy.stats.t.interval(c, df=n-1, loc=mean, scale=scipy.stats.sem(x))")
x = np.array([0.5, 1.0, 0.25, 0.75, 1.0, 0.0, 0.6])
for c in [0.95, 0.9]:
    lo, hi = stats.t.interval(c, df=len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    print(f"c={c}: mean={x.mean()!r} lo={lo!r} hi={hi!r}")

print("## normal quantiles: scipy.stats.norm.ppf(p)")
for p in [0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 0.995, 0.001]:
    print(f"({p}, {stats.norm.ppf(p)!r}),")

print("## McNemar: statsmodels mcnemar([[a, b], [c, d]], exact=True).pvalue; scipy binomtest(min(b,c), b+c, 0.5).pvalue")
for a, b, c, d in [(50, 10, 3, 37), (20, 0, 5, 0), (10, 25, 25, 40), (3, 1, 0, 2), (0, 480, 400, 120), (100, 40, 12, 8)]:
    sm = mcnemar(np.array([[a, b], [c, d]]), exact=True).pvalue
    bt = stats.binomtest(min(b, c), b + c, 0.5).pvalue
    print(f"({a}, {b}, {c}, {d}, {sm!r}),  # binomtest {bt!r}")

print("## percentiles: numpy.percentile(x, p, method='linear')")
x = np.array([12.5, 3.0, 7.25, 100.0, 42.0, 8.0, 15.5, 9.75, 61.0, 3.0, 27.0])
print("data", list(x))
for p in [0, 10, 37.5, 50, 90, 95, 99, 100]:
    print(f"({p}, {np.percentile(x, p, method='linear')!r}),")
print("mean", repr(x.mean()))

print("## pass@k: 1 - Fraction(comb(n-c,k), comb(n,k)) (exact rational arithmetic)")
for n, c, k in [(200, 13, 1), (200, 13, 10), (200, 13, 100), (10, 3, 5), (5, 0, 1), (20, 19, 2), (1000, 1, 500)]:
    v = 1 - Fraction(comb(n - c, k), comb(n, k))
    print(f"({n}, {c}, {k}, {float(v)!r}),")

print("## power: NormalIndPower().solve_power(effect_size=delta/sd, alpha=1-c, power=pw, ratio=0, alternative='larger')")
def binary_moments(pt, ps, disc):
    p10 = (disc + pt - ps) / 2
    p11 = pt - p10
    return pt, ps, pt * (1 - pt), ps * (1 - ps), p11 - pt * ps
for pt, ps, disc, t, c, pw in [(0.9, 0.88, 0.06, 0.95, 0.95, 0.8), (0.8, 0.8, 0.1, 0.95, 0.95, 0.8),
                              (0.7, 0.69, 0.2, 0.9, 0.99, 0.9), (0.5, 0.55, 0.3, 1.0, 0.95, 0.8)]:
    mt, ms, vt, vs, cov = binary_moments(pt, ps, disc)
    delta = ms - t * mt
    var_d = vs + t * t * vt - 2 * t * cov
    n = NormalIndPower().solve_power(effect_size=delta / np.sqrt(var_d), alpha=1 - c, power=pw, ratio=0,
                                     alternative="larger")
    print(f"({pt}, {ps}, {disc}, {t}, {c}, {pw}, {n!r}),  # ceil {int(np.ceil(n))}")

print("## paired table (both, teacher_only, student_only, neither) = (300, 40, 25, 135), n = 500")
both, t_only, s_only, neither = 300, 40, 25, 135
t = np.array([1.0] * both + [1.0] * t_only + [0.0] * s_only + [0.0] * neither)
s = np.array([1.0] * both + [0.0] * t_only + [1.0] * s_only + [0.0] * neither)
n = len(t)
print("point R = s.mean()/t.mean():", repr(s.mean() / t.mean()))

print("## delta method on log R: numpy, var/cov with ddof=1, z from scipy.stats.norm.ppf")
vt, vs = t.var(ddof=1), s.var(ddof=1)
cov = np.cov(s, t, ddof=1)[0, 1]
se = np.sqrt((vs / s.mean() ** 2 + vt / t.mean() ** 2 - 2 * cov / (s.mean() * t.mean())) / n)
logr = np.log(s.mean() / t.mean())
for c in [0.95, 0.9]:
    z2, z1 = stats.norm.ppf((1 + c) / 2), stats.norm.ppf(c)
    print(f"c={c}: se={se!r} lo={np.exp(logr - z2 * se)!r} hi={np.exp(logr + z2 * se)!r} lower_bound={np.exp(logr - z1 * se)!r}")

print("## bootstrap quantiles of R: numpy multinomial resampling of the table, 2,000,000 resamples, default_rng(12345)")
rng = np.random.default_rng(12345)
counts = rng.multinomial(n, np.array([both, t_only, s_only, neither]) / n, size=2_000_000)
tt = counts[:, 0] + counts[:, 1]
ss = counts[:, 0] + counts[:, 2]
r = ss / tt
for q in [0.025, 0.05, 0.975]:
    print(f"q={q}: {np.quantile(r, q, method='linear')!r}")
