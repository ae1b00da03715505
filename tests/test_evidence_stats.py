"""Bayes factors and permutation tests of mrd_backend.evidence.stats against published values and enumeration."""
import math

import numpy as np
import pytest

from mrd_backend.errors import MRDError
from mrd_backend.evidence import stats as S

# Student's sleep data (R's `sleep`): extra hours of sleep under two drugs, the same 10 patients.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_bf10_matches_pingouin_documented_values():
    # pingouin.bayesfactor_ttest docstring (its default r = 0.707): t = 3.5, n = 20 (+20): 26.743 (independent),
    # 17.185 (paired)
    assert S.jzs_bf10(3.5, 20, 20, r=0.707) == pytest.approx(26.743, abs=5e-4)
    assert S.jzs_bf10(3.5, 20, r=0.707) == pytest.approx(17.185, abs=5e-4)


def test_sleep_data_matches_bayesfactor_package():
    # BayesFactor (Morey & Rouder) ttestBF on the sleep differences, rscale "medium" = sqrt(2)/2:
    # two-sided 17.25888, one-sided (-Inf < d < 0) 34.41694, its complement 0.1008246.
    d = np.subtract(SLEEP_1, SLEEP_2)
    t = S.t_statistic(d)
    assert t == pytest.approx(-4.0621, abs=1e-4)
    assert S.jzs_bf10(t, 10) == pytest.approx(17.25888, rel=1e-5)
    assert S.jzs_bf_directional(t, 10, alternative="less") == pytest.approx(34.41694, rel=1e-5)
    assert S.jzs_bf_directional(t, 10, alternative="greater") == pytest.approx(0.1008246, rel=1e-5)
    # bayes_paired on (2, 1) tests "drug 2 adds sleep": BF+0 = 34.4, strong evidence for H+
    b = S.bayes_paired(SLEEP_2, SLEEP_1)
    assert b["bf_plus0"] == pytest.approx(34.41694, rel=1e-5)
    assert b["label"] == "very strong evidence for H+"
    assert b["posterior_positive"] == pytest.approx(34.41694 / (2 * 17.25888), rel=1e-5)


@pytest.mark.parametrize("t,n", [(0.0, 5), (0.7, 3), (-2.5, 25), (12.0, 25), (300.0, 25), (-5e3, 12)])
def test_directional_factors_add_up_to_twice_the_two_sided(t, n):
    # BF+0 + BF-0 = 2 BF10 (Morey & Wagenmakers 2014): two independent integrals, checked in log space
    lp = S.jzs_log_bf_directional(t, n, alternative="greater")
    lm = S.jzs_log_bf_directional(t, n, alternative="less")
    assert np.logaddexp(lp, lm) - math.log(2) == pytest.approx(S.jzs_log_bf10(t, n), rel=1e-6, abs=1e-8)
    if t > 0:
        assert lp > lm


def test_jeffreys_labels():
    assert S.jeffreys_label(150) == "decisive evidence for H+"
    assert S.jeffreys_label(31) == "very strong evidence for H+"
    assert S.jeffreys_label(11) == "strong evidence for H+"
    assert S.jeffreys_label(4) == "moderate evidence for H+"
    assert S.jeffreys_label(2) == "anecdotal evidence for H+"
    assert S.jeffreys_label(1) == "no evidence either way"
    assert S.jeffreys_label(0.2) == "moderate evidence for H0"
    assert S.jeffreys_label(1 / 200) == "decisive evidence for H0"
    assert S.jeffreys_label(None) == "undefined"


def test_rank_bf_uses_pooled_ranks():
    s, b = [0.9, 0.8, 0.95, 0.85], [0.1, 0.2, 0.3, 0.25]
    r = S.bayes_rank(s, b)
    assert r["mean_rank_scores"] == 6.5 and r["mean_rank_baseline"] == 2.5
    assert r["t"] == pytest.approx(S.two_sample_t([5, 6, 7, 8], [1, 2, 3, 4]))
    assert r["bf_plus0"] > 10


def test_sign_flip_exact_small_case():
    # d = (1, 2, 3): only the all-positive sign vector reaches mean 2 -> p = 1/8
    out = S.sign_flip_test([1, 2, 3], [0, 0, 0], method="exact")
    assert out["p"] == pytest.approx(1 / 8) and out["draws"] == 8


def test_monte_carlo_permutations_match_exhaustive_enumeration():
    rng = np.random.default_rng(3)
    s, b = rng.normal(0.5, 0.1, 8), rng.normal(0.46, 0.1, 8)
    exact = S.sign_flip_test(s, b, method="exact")["p"]
    mc = S.sign_flip_test(s, b, draws=10_000, seed=1)["p"]
    assert abs(mc - exact) < 4 * math.sqrt(exact * (1 - exact) / 10_000) + 1e-4
    s6, b6 = s[:6], b[:6]
    exact_r = S.rank_permutation_test(s6, b6, method="exact")
    assert exact_r["draws"] == math.comb(12, 6)
    mc_r = S.rank_permutation_test(s6, b6, draws=10_000, seed=1)["p"]
    assert abs(mc_r - exact_r["p"]) < 4 * math.sqrt(exact_r["p"] * (1 - exact_r["p"]) / 10_000) + 1e-4


def test_permutations_are_seeded_and_one_sided():
    s, b = np.linspace(0.6, 0.9, 10), np.linspace(0.5, 0.8, 10) + 0.01 * np.sin(np.arange(10))
    a1, a2 = S.sign_flip_test(s, b, seed=7), S.sign_flip_test(s, b, seed=7)
    assert a1 == a2 and a1["draws"] == S.DRAWS
    assert S.sign_flip_test(s, b)["p"] < 0.01
    assert S.sign_flip_test(b, s)["p"] > 0.99  # the other direction


def test_paired_evidence_and_bad_input():
    e = S.paired_evidence([0.9, 0.92, 0.95, 0.91], [0.8, 0.85, 0.83, 0.86], draws=500)
    assert e["n"] == 4 and e["views_above_baseline"] == 4
    assert {"bayes", "rank_bayes", "sign_flip", "rank_permutation"} <= set(e)
    with pytest.raises(MRDError):
        S.paired_evidence([0.9, 0.8], [0.7])
    with pytest.raises(MRDError):
        S.paired_evidence([0.9], [0.7])
    with pytest.raises(MRDError):
        S.paired_evidence([0.9, float("nan")], [0.7, 0.6])
    flat = S.bayes_paired([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])  # every difference exactly 0.5: no variance
    assert flat["bf_plus0"] is None and flat["label"].startswith("undefined")
