"""Independent reference values for the calibration work (issue 10):
clustered variance / design effect, Fieller and BCa retention intervals,
Holm / Bonferroni, and the planning sample size.

Run: python3 tests/reference/calibration_reference.py
Each printed number is pasted into a Rust test with a comment naming the
call that produced it.
"""
import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm
from scipy import stats, optimize
from statsmodels.stats.multitest import multipletests

print(f"# numpy {np.__version__}, scipy {scipy.__version__}, statsmodels {statsmodels.__version__}")

print("## design effect: cluster-robust OLS of D = s - R t on a constant")
t = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 1.0])
s = np.array([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5, 0.75])
g = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3])
R = s.sum() / t.sum()
D = s - R * t
X = np.ones((len(D), 1))
cl = sm.OLS(D, X).fit(cov_type="cluster", cov_kwds={"groups": g}).bse[0] ** 2
iid = sm.OLS(D, X).fit().bse[0] ** 2
print(f"DEFF_REF = {cl / iid!r}; CLUSTER_VAR_REF = {cl!r}")


def table(both, t_only, s_only, neither):
    t = np.array([1.0] * both + [1.0] * t_only + [0.0] * s_only + [0.0] * neither)
    s = np.array([1.0] * both + [0.0] * t_only + [1.0] * s_only + [0.0] * neither)
    return t, s


print("## Fieller by test inversion: brentq on z(r) = (s̄ - r t̄) / sqrt(var(s - r t, ddof=1) / n)")
for cells, c in [((300, 40, 25, 135), 0.95), ((40, 9, 2, 9), 0.95), ((300, 40, 25, 135), 0.9)]:
    t, s = table(*cells)
    n = len(t)
    R = s.mean() / t.mean()

    def zstat(r):
        d = s - r * t
        return d.mean() / np.sqrt(d.var(ddof=1) / n)

    z2 = stats.norm.ppf((1 + c) / 2)
    z1 = stats.norm.ppf(c)
    lo = optimize.brentq(lambda r: zstat(r) - z2, 0.0, R, xtol=1e-15)
    hi = optimize.brentq(lambda r: zstat(r) + z2, R, 10.0, xtol=1e-15)
    lb = optimize.brentq(lambda r: zstat(r) - z1, 0.0, R, xtol=1e-15)
    print(f"{cells} c={c}: ({lo!r}, {hi!r}, {lb!r})")

print("## BCa: scipy.stats.bootstrap paired, n_resamples=200000")
t, s = table(40, 9, 2, 9)
for c in [0.95, 0.90]:
    res = stats.bootstrap((t, s), lambda t, s, axis: s.mean(axis) / t.mean(axis), paired=True,
                          vectorized=True, method="BCa", n_resamples=200_000,
                          confidence_level=c, random_state=1)
    print(f"c={c}: {res.confidence_interval.low!r}, {res.confidence_interval.high!r}")

print("## Score statistic for a paired ratio (Nam & Blackwelder 2002; Tang, Tang & Chan 2003):")
print("## constrained MLE by Nelder-Mead over (p11, p10), p01 = θ p10 + (θ-1) p11")


def constrained_mle(x11, x10, x01, x00, th):
    xs = [x11, x10, x01, x00]

    def probs(v):
        p11, p10 = v
        return [p11, p10, th * p10 + (th - 1) * p11, 1 - th * p11 - (1 + th) * p10]

    def nll(v):
        ps = probs(v)
        if min(ps) <= 0:
            return 1e18
        return -sum(x * np.log(p) for x, p in zip(xs, ps) if x > 0)

    best = None
    for start in [(0.3, 0.1), (0.5, 0.05), (0.2, 0.2), (0.6, 0.02), (0.1, 0.01), (0.8, 0.05)]:
        r = optimize.minimize(nll, start, method="Nelder-Mead",
                              options={"xatol": 1e-14, "fatol": 1e-14, "maxiter": 40000})
        if best is None or r.fun < best.fun:
            best = r
    return probs(best.x)


def null_var(cells, th):
    p = constrained_mle(*cells, th)
    d = [1 - th, -th, 1.0, 0.0]
    return sum(pi * di * di for pi, di in zip(p, d))


def score(cells, th):
    n = sum(cells)
    d = [1 - th, -th, 1.0, 0.0]
    mean = sum(x * di for x, di in zip(cells, d)) / n
    return np.sqrt(n) * mean / np.sqrt(null_var(cells, th))


for cells, th in [((15, 3, 0, 32), 0.95), ((15, 0, 0, 35), 0.95), ((300, 40, 25, 135), 0.9),
                  ((40, 9, 2, 9), 0.95), ((40, 9, 2, 9), 1.1), ((12, 1, 4, 33), 0.8)]:
    print(f"(({cells[0]}.0, {cells[1]}.0, {cells[2]}.0, {cells[3]}.0), {th}, {null_var(cells, th)!r}),")

print("## score interval by brentq on the score statistic")
for cells, c in [((300, 40, 25, 135), 0.95), ((40, 9, 2, 9), 0.95), ((15, 0, 0, 35), 0.9)]:
    R = (cells[0] + cells[2]) / (cells[0] + cells[1])
    z2 = stats.norm.ppf((1 + c) / 2)
    z1 = stats.norm.ppf(c)
    lo = optimize.brentq(lambda r: score(cells, r) - z2, 0.5, R - 1e-9, xtol=1e-12)
    hi = optimize.brentq(lambda r: score(cells, r) + z2, R + 1e-9, 1.9, xtol=1e-12)
    lb = optimize.brentq(lambda r: score(cells, r) - z1, 0.5, R - 1e-9, xtol=1e-12)
    print(f"(({cells[0]}.0, {cells[1]}.0, {cells[2]}.0, {cells[3]}.0), {c}, {lo!r}, {hi!r}, {lb!r}),")

print("## fractional scores: the score interval on their expected pass/fail cells")
print("## (each pair coupled to disagree least: min(t, s) both right), lower bound at 0.95")
ft = [((i * 7) % 5) / 4 for i in range(80)]
fs = [max(t - 0.5, 0.0) if i % 9 == 0 else min(t + 0.25, 1.0) if i % 13 == 0 else t
      for i, t in enumerate(ft)]
cells = (sum(min(t, s) for t, s in zip(ft, fs)),
         sum(t - min(t, s) for t, s in zip(ft, fs)),
         sum(s - min(t, s) for t, s in zip(ft, fs)),
         sum(1 - max(t, s) for t, s in zip(ft, fs)))
R = sum(fs) / sum(ft)
lb = optimize.brentq(lambda r: score(cells, r) - stats.norm.ppf(0.95), 0.5, R - 1e-9, xtol=1e-12)
print(f"cells {cells}, R {R!r}, lower bound {lb!r}")

print("## Holm / Bonferroni: multipletests(p, alpha=0.05)")
p = [0.004, 0.011, 0.0165, 0.03, 0.2]
for m in ["holm", "bonferroni"]:
    print(m, list(multipletests(p, alpha=0.05, method=m)[0]))

print("## plan: NormalIndPower().solve_power(effect_size=δ/σ_D, alpha=1-c, power, ratio=0, alternative='larger')")
from statsmodels.stats.power import NormalIndPower
for pt, r, d, t, c, pw in [(0.8, 0.98, 0.1, 0.95, 0.95, 0.8), (0.5, 1.0, 0.2, 0.9, 0.95, 0.9),
                           (0.9, 0.99, 0.05, 0.95, 0.99, 0.8)]:
    ps = r * pt
    p10 = (d + pt - ps) / 2
    p11 = pt - p10
    var_t, var_s, cov = pt * (1 - pt), ps * (1 - ps), p11 - pt * ps
    delta = ps - t * pt
    sd = np.sqrt(var_s + t * t * var_t - 2 * t * cov)
    n = NormalIndPower().solve_power(effect_size=delta / sd, alpha=1 - c, power=pw, ratio=0,
                                     alternative="larger")
    print(repr(n))
