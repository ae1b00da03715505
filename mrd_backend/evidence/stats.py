"""Is the result's similarity to the target larger than a baseline's? Paired per-view scores -> Bayes factors and
permutation tests, exactly as the research code's later version defines them (commit bf05bcc, src/bayes.py;
docs/evidence.md, "Research-compatible statistics"):

- directional JZS Bayes factor BF+0 on the paired differences d_i = score_i - baseline_i: a one-sample t test,
  Cauchy prior on the standardized effect size delta with scale r = sqrt(2)/2 (Rouder et al. 2009), restricted to
  delta > 0 (Morey & Wagenmakers 2014): BF+0 = 2 * BF10 * P(delta > 0 | data, H1);
- a rank-based BF+0: the 2n scores pooled and ranked jointly, a two-sample t test on the ranks, the same prior;
- Monte Carlo permutation tests (10,000 draws, seeded): sign flips of d (statistic mean d) and group reassignment
  of the pooled ranks (statistic mean rank of the scores minus mean rank of the baseline); one-sided p-values
  (1 + #{permuted >= observed}) / (1 + draws);
- each BF labelled on Jeffreys' scale.

BF10 is the two-sided JZS integral of Rouder et al. (eq. 1, the form pingouin's `bayesfactor_ttest` uses); BF+0 is
computed exactly by integrating the noncentral-t likelihood over the half-Cauchy prior (no approximation of the
posterior mass). pingouin itself is not a dependency: its current release needs numpy >= 2 and only does the
two-sided factor; the tests check these functions against its documented values.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from ..errors import MRDError
from ..protocol import finite as _finite

PRIOR_R = math.sqrt(2) / 2
DRAWS = 10_000

# Jeffreys' scale as the research code labels it: (lower bound, word), strongest first.
JEFFREYS = ((100.0, "decisive"), (30.0, "very strong"), (10.0, "strong"), (3.0, "moderate"), (1.0, "anecdotal"))


# -- Bayes factors -------------------------------------------------------------------------------------------------
def _design(n: int, n2: int | None):
    if n2 is None:
        if n < 2:
            raise MRDError(f"a t test needs at least 2 paired scores, got {n}: use more views")
        return float(n), n - 1
    if n < 2 or n2 < 2:
        raise MRDError(f"a two-sample t test needs at least 2 scores per group, got {n} and {n2}: use more views")
    return n * n2 / (n + n2), n + n2 - 2


def _log_integral(logf, lo: float, hi: float, guess: float) -> float:
    """log of the integral of exp(logf) over (lo, hi), robust to very peaked or very large integrands: the peak is
    found first and the integral is taken around it, in units of exp(peak)."""
    from scipy.integrate import quad
    from scipy.optimize import minimize_scalar

    def safe(x):
        try:
            v = logf(x)
        except (OverflowError, ValueError, ZeroDivisionError):
            return -1e300
        return v if math.isfinite(v) else -1e300
    guess = min(max(guess, lo), hi)
    a = lo if math.isfinite(lo) else guess - 60.0
    b = hi if math.isfinite(hi) else guess + 60.0
    with np.errstate(all="ignore"):
        res = minimize_scalar(lambda x: -safe(x), bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    peak, top = float(res.x), -float(res.fun)
    if safe(guess) > top:
        peak, top = guess, safe(guess)
    # width from the curvature at the peak (falls back to 1 at a boundary or a flat top)
    h = 1e-4 * max(1.0, abs(peak))
    curv = (safe(peak + h) - 2 * top + safe(peak - h)) / (h * h)
    w = 1.0 / math.sqrt(-curv) if curv < 0 and math.isfinite(curv) else 1.0
    cuts = sorted({lo, hi, peak, *[peak + k * w for k in (-30, -8, -2, 2, 8, 30)]})
    cuts = [c for c in cuts if lo <= c <= hi]
    total = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quad's accuracy notes on far tails whose mass is negligible
        for x0, x1 in zip(cuts[:-1], cuts[1:]):
            if x1 > x0:
                total += quad(lambda x: math.exp(safe(x) - top), x0, x1, limit=200, epsabs=0, epsrel=1e-10)[0]
    return top + math.log(total) if total > 0 else -math.inf


def jzs_log_bf10(t: float, n: int, n2: int | None = None, r: float = PRIOR_R) -> float:
    """log of the two-sided JZS Bayes factor BF10 of a t statistic (Rouder et al. 2009, eq. 1; one-sample or paired:
    n; independent groups: n and n2), integrated over log g so that large t stay accurate."""
    neff, df = _design(n, n2)
    t = float(t)
    log_null = -(df + 1) / 2 * math.log1p(t * t / df)

    def logf(x):  # x = log g; the integrand of eq. 1 times the Jacobian g
        g = math.exp(x)
        a = 1 + neff * g * r * r
        return (-0.5 * math.log(a) - (df + 1) / 2 * math.log1p(t * t / (a * df)) - 0.5 * math.log(2 * math.pi)
                - 1.5 * x - 1 / (2 * g) + x)
    return _log_integral(logf, -np.inf, np.inf, guess=math.log(max(t * t / (neff * r * r), 1e-3))) - log_null


def jzs_bf10(t: float, n: int, n2: int | None = None, r: float = PRIOR_R) -> float:
    """Two-sided JZS Bayes factor BF10 (what pingouin's `bayesfactor_ttest` and BayesFactor's `ttest.tstat` give)."""
    return math.exp(jzs_log_bf10(t, n, n2, r))


_GL_X, _GL_W = np.polynomial.legendre.leggauss(160)


def _log_nct_ratio(t: float, df: int, mu: float) -> float:
    """log of noncentral-t density / central-t density at t, df, noncentrality mu, from the integral representation
    f(t) = C exp(-df mu^2 / (2 (t^2 + df))) * int_0^inf y^df exp(-(y - c)^2 / 2) dy, c = mu t / sqrt(t^2 + df),
    evaluated around its peak (scipy's nct fails for large t)."""
    c = mu * t / math.sqrt(t * t + df)
    y0 = (c + math.sqrt(c * c + 4 * df)) / 2          # peak of df log y - (y - c)^2 / 2
    s = 1 / math.sqrt(df / (y0 * y0) + 1)              # its width
    a, b = max(0.0, y0 - 14 * s), y0 + 14 * s
    if a < 1e-12:
        a = 0.0
    y = (b - a) / 2 * _GL_X + (a + b) / 2
    with np.errstate(divide="ignore"):
        h = df * np.log(y) - (y - c) ** 2 / 2
    top = float(h.max())
    log_int = top + math.log(float(np.sum(_GL_W * np.exp(h - top))) * (b - a) / 2)
    log_int0 = (df - 1) / 2 * math.log(2) + math.lgamma((df + 1) / 2)
    return -df * mu * mu / (2 * (t * t + df)) + log_int - log_int0


def jzs_log_bf_interval(t: float, n: int, n2: int | None = None, r: float = PRIOR_R,
                        lo: float = 0.0, hi: float = math.inf) -> float:
    """log Bayes factor of H1 with the Cauchy(0, r) prior on delta restricted (and renormalized) to (lo, hi)
    against delta = 0: the noncentral-t likelihood ratio integrated over that prior."""
    from scipy import stats
    neff, df = _design(n, n2)
    sq = math.sqrt(neff)
    t = float(t)
    log_mass = math.log(stats.cauchy.cdf(hi, scale=r) - stats.cauchy.cdf(lo, scale=r))

    def logf(d):
        return _log_nct_ratio(t, df, d * sq) + float(stats.cauchy.logpdf(d, scale=r)) - log_mass
    return _log_integral(logf, lo, hi, guess=t / sq)


def jzs_bf_directional(t: float, n: int, n2: int | None = None, r: float = PRIOR_R,
                       alternative: str = "greater") -> float:
    """Directional JZS Bayes factor: BF+0 (delta > 0, `greater`) or BF-0 (`less`) against delta = 0.
    Equals 2 * BF10 * P(delta > 0 | data, H1) (Morey & Wagenmakers 2014)."""
    return math.exp(jzs_log_bf_directional(t, n, n2, r, alternative))


def jzs_log_bf_directional(t: float, n: int, n2: int | None = None, r: float = PRIOR_R,
                           alternative: str = "greater") -> float:
    if alternative == "greater":
        return jzs_log_bf_interval(t, n, n2, r, 0.0, math.inf)
    if alternative == "less":
        return jzs_log_bf_interval(t, n, n2, r, -math.inf, 0.0)
    if alternative == "two-sided":
        return jzs_log_bf10(t, n, n2, r)
    raise MRDError(f"unknown alternative {alternative!r}: use greater, less or two-sided")


def t_statistic(d) -> float:
    """One-sample t of paired differences; 0 when every difference is 0; +-inf when all are equal and non-zero."""
    d = np.asarray(d, np.float64)
    m, s = d.mean(), d.std(ddof=1)
    if s == 0:
        return 0.0 if m == 0 else math.copysign(math.inf, m)
    return float(m / (s / math.sqrt(len(d))))


def two_sample_t(a, b) -> float:
    """Student's (pooled-variance) two-sample t of a minus b."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = len(a), len(b)
    sp = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    diff = a.mean() - b.mean()
    if sp == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / math.sqrt(sp * (1 / na + 1 / nb)))


def jeffreys_label(bf: float | None, hypothesis: str = "H+", log10_bf: float | None = None) -> str:
    """'moderate evidence for H+', 'strong evidence for H0', 'no evidence either way' ... (Jeffreys' scale:
    > 100 decisive, > 30 very strong, > 10 strong, > 3 moderate, > 1 anecdotal; the mirror bounds for H0)."""
    if log10_bf is None:
        if bf is None or not (bf >= 0) or math.isnan(bf):
            return "undefined"
        log10_bf = math.inf if bf == math.inf else (-math.inf if bf == 0 else math.log10(bf))
    if log10_bf == 0:
        return "no evidence either way"
    toward, x = (hypothesis, log10_bf) if log10_bf > 0 else ("H0", -log10_bf)
    for bound, word in JEFFREYS:
        if x > math.log10(bound):
            return f"{word} evidence for {toward}"
    return "no evidence either way"


def bf_text(b: dict | None, missing: str = "—") -> str:
    """A BF+0 record's factor as people read it: 3 significant digits, or 10^x once it is at least 1e5 or below
    1e-3 (or overflowed a double); `missing` when it is undefined. The one formatter: sentence, page and sweep
    table print a factor the same way."""
    lg = (b or {}).get("log10_bf_plus0")
    if lg is None:
        return missing
    bf = b.get("bf_plus0")
    if bf is None or bf >= 1e5 or bf < 1e-3:
        return f"10^{lg:.1f}"
    return f"{bf:.3g}"


def _bf_fields(log_bf: float, prefix: str) -> dict:
    """A natural-log Bayes factor as JSON fields: the factor (None when it overflows a double), log10, label."""
    log10 = log_bf / math.log(10)
    bf = math.exp(log_bf) if log_bf < 700 else None
    return {prefix: bf, f"log10_{prefix}": log10, "label": jeffreys_label(None, log10_bf=log10)}


def bayes_paired(scores, baseline, r: float = PRIOR_R) -> dict:
    """Directional JZS BF+0 on d = scores - baseline (paired), with the two-sided BF10, t, n and the Jeffreys label
    of BF+0. `posterior_positive` = P(delta > 0 | data, H1) = BF+0 / (2 BF10)."""
    s, b = _pair(scores, baseline)
    d = s - b
    t = t_statistic(d)
    out = {"t": _finite(t), "df": len(d) - 1, "n": len(d), "prior_r": r}
    if math.isinf(t):
        out.update(bf_plus0=None, log10_bf_plus0=None, bf10=None, log10_bf10=None, posterior_positive=None,
                   label="undefined (every view has the same difference: no variance to test)")
        return out
    log_p = jzs_log_bf_directional(t, len(d), r=r)
    log_10 = jzs_log_bf10(t, len(d), r=r)
    out.update(_bf_fields(log_p, "bf_plus0"))
    out.update(bf10=math.exp(log_10) if log_10 < 700 else None, log10_bf10=log_10 / math.log(10),
               posterior_positive=min(1.0, math.exp(log_p - log_10 - math.log(2))))
    return out


def bayes_rank(scores, baseline, r: float = PRIOR_R) -> dict:
    """Rank-based BF+0: the 2n scores ranked jointly (ties averaged), Student's two-sample t of the score ranks
    against the baseline ranks, the directional JZS Bayes factor with the same prior (n_eff = n/2, df = 2n - 2)."""
    from scipy.stats import rankdata
    s, b = _pair(scores, baseline)
    ranks = rankdata(np.concatenate([s, b]))
    rs, rb = ranks[:len(s)], ranks[len(s):]
    t = two_sample_t(rs, rb)
    out = {"t": _finite(t), "df": 2 * len(s) - 2, "n": len(s), "prior_r": r,
           "mean_rank_scores": float(rs.mean()), "mean_rank_baseline": float(rb.mean())}
    if math.isinf(t):
        out.update(bf_plus0=None, log10_bf_plus0=None, label="undefined (the ranks do not vary within a group)")
        return out
    out.update(_bf_fields(jzs_log_bf_directional(t, len(s), len(b), r=r), "bf_plus0"))
    return out


# -- permutation tests ---------------------------------------------------------------------------------------------
def _pair(scores, baseline):
    s = np.asarray(scores, np.float64).ravel()
    b = np.asarray(baseline, np.float64).ravel()
    if s.shape != b.shape:
        raise MRDError(f"paired scores need one baseline per view: got {len(s)} scores and {len(b)} baselines")
    if len(s) < 2:
        raise MRDError(f"paired tests need at least 2 views, got {len(s)}: use more views")
    if not (np.isfinite(s).all() and np.isfinite(b).all()):
        raise MRDError("a paired score is NaN or infinite: the similarity of some view could not be computed")
    return s, b


def _tol(x):
    return 1e-12 * max(1.0, abs(float(x)))


def sign_flip_test(scores, baseline, draws: int = DRAWS, seed: int = 0, method: str = "monte_carlo") -> dict:
    """One-sided paired sign-flip test of mean(d) > 0. `method`: monte_carlo (seeded, `draws` random sign vectors,
    p = (1 + #{mean >= observed}) / (1 + draws)) or exact (all 2^n sign vectors, n <= 20)."""
    s, b = _pair(scores, baseline)
    d = s - b
    obs = float(d.mean())
    if method == "exact":
        if len(d) > 20:
            raise MRDError(f"exact sign-flip enumeration of {len(d)} views (2^{len(d)}) is too large: use monte_carlo")
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
        stats_ = signs @ d / len(d)
        p = float(np.mean(stats_ >= obs - _tol(obs)))
        return {"statistic": obs, "p": p, "method": "exact", "draws": len(signs), "seed": None}
    if method != "monte_carlo":
        raise MRDError(f"unknown permutation method {method!r}: use monte_carlo or exact")
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(draws, len(d)))
    stats_ = signs @ d / len(d)
    count = int(np.sum(stats_ >= obs - _tol(obs)))
    return {"statistic": obs, "p": (1 + count) / (1 + draws), "method": "monte_carlo", "draws": draws, "seed": seed}


def rank_permutation_test(scores, baseline, draws: int = DRAWS, seed: int = 0, method: str = "monte_carlo") -> dict:
    """One-sided test that the scores rank above the baseline: the 2n pooled ranks reassigned to two groups of n
    at random; statistic mean rank(scores) - mean rank(baseline). `method` exact enumerates all C(2n, n) splits."""
    from scipy.stats import rankdata
    s, b = _pair(scores, baseline)
    n = len(s)
    ranks = rankdata(np.concatenate([s, b]))
    total = ranks.sum()

    def stat(sum_first):
        return sum_first / n - (total - sum_first) / n
    obs = float(stat(ranks[:n].sum()))
    if method == "exact":
        if math.comb(2 * n, n) > 2_000_000:
            raise MRDError(f"exact enumeration of C({2 * n}, {n}) splits is too large: use monte_carlo")
        sums = np.array([ranks[list(c)].sum() for c in itertools.combinations(range(2 * n), n)])
        p = float(np.mean(stat(sums) >= obs - _tol(obs)))
        return {"statistic": obs, "p": p, "method": "exact", "draws": len(sums), "seed": None}
    if method != "monte_carlo":
        raise MRDError(f"unknown permutation method {method!r}: use monte_carlo or exact")
    rng = np.random.default_rng(seed)
    perm = rng.permuted(np.broadcast_to(ranks, (draws, 2 * n)), axis=1)
    sims = stat(perm[:, :n].sum(1))
    count = int(np.sum(sims >= obs - _tol(obs)))
    return {"statistic": obs, "p": (1 + count) / (1 + draws), "method": "monte_carlo", "draws": draws, "seed": seed}


def paired_evidence(scores, baseline, draws: int = DRAWS, seed: int = 0, r: float = PRIOR_R) -> dict:
    """Everything the research code's bayes.py computes for n paired per-view scores, as one JSON-ready dict."""
    s, b = _pair(scores, baseline)
    d = s - b
    return {
        "n": len(s), "scores": s.tolist(), "baseline_scores": b.tolist(), "differences": d.tolist(),
        "mean_difference": float(d.mean()), "views_above_baseline": int((d > 0).sum()),
        "bayes": bayes_paired(s, b, r), "rank_bayes": bayes_rank(s, b, r),
        "sign_flip": sign_flip_test(s, b, draws, seed), "rank_permutation": rank_permutation_test(s, b, draws, seed),
    }
