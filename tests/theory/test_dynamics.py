"""jepalab.theory.dynamics against high-precision integration, closed forms and the numbers in docs/theory.md."""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from jepalab.theory import (
    amplitude_rate,
    critical_time,
    critical_time_expansion,
    fixed_point,
    format_order,
    learning_order,
    trajectory,
)

OPP_LAM = np.array([1.0, 0.9667, 0.9333, 0.9])
OPP_RHO = np.array([0.4, 0.55, 0.7, 0.85])


def _rhs(objective, lam, rho, depth):
    """dv/dt of the scalar ODE in the predictor/layer weight v (docs/theory.md, "The ODEs")."""
    if objective == "jepa":
        return lambda u: lam * u ** (2 * depth) * (1 - u / rho)
    return lambda u: lam * u**depth * (1 - u ** (depth + 1) / rho)


def _reference_time(objective, lam, rho, depth, eps, v_end, dps=40):
    """t(v_end) = ∫ dv / f(v) from v0 = ε^(1/L), by mpmath quadrature in ln v (no partial fractions)."""
    with mp.workdps(dps):
        lam_m, rho_m, depth_m = mp.mpf(lam), mp.mpf(rho), mp.mpf(depth)
        f = _rhs(objective, lam_m, rho_m, depth)
        v0 = mp.mpf(eps) ** (1 / depth_m)
        return mp.quad(lambda s: mp.e**s / f(mp.e**s), [mp.log(v0), mp.log(mp.mpf(v_end))])


def _threshold_v(objective, rho, depth, frac):
    with mp.workdps(40):
        v_star = mp.mpf(rho) if objective == "jepa" else mp.mpf(rho) ** (mp.mpf(1) / (depth + 1))
        return mp.mpf(frac) ** (mp.mpf(1) / depth) * v_star


features = st.tuples(
    st.sampled_from(["jepa", "mae"]),
    st.integers(1, 8),
    st.floats(-8, np.log10(0.5)),
    st.floats(-3, 3),
    st.floats(-2, 2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(features, st.floats(0.05, 0.95))
@example(("jepa", 4, -1.302734375, 0.0, 0.0), 0.05)  # starts 0.09 % below its threshold: a short, positive time
def test_critical_time_matches_high_precision_integration(case, frac):
    """0 at or above the threshold, else the quadrature's time (to round-off of v0 when it starts just below)."""
    objective, depth, log_eps, log_lam, log_rho = case
    eps, lam, rho = 10.0**log_eps, 10.0**log_lam, 10.0**log_rho
    v_p = _threshold_v(objective, rho, depth, frac)
    if eps ** (1 / depth) >= float(v_p):
        assert critical_time(objective, lam, rho, depth, eps, frac) == 0.0
        return
    reference = float(_reference_time(objective, lam, rho, depth, eps, v_p))
    assert critical_time(objective, lam, rho, depth, eps, frac) == pytest.approx(reference, rel=1e-8, abs=1e-9)


def _time_reaching(objective, lam, rho, depth, eps, w):
    """The exact time at which w̄ reaches ``w``; for a ``w`` that rounds to the fixed point, the time at which the
    trajectory comes within float64 resolution of it (the integral itself diverges there)."""
    with mp.workdps(40):
        v_cap = _threshold_v(objective, rho, depth, 1.0) * (1 - mp.mpf(2) ** -52)
        v = mp.root(mp.mpf(w), depth)
        return _reference_time(objective, lam, rho, depth, eps, min(v, v_cap)), v >= v_cap


@settings(max_examples=30, deadline=None)
@given(features, st.floats(0.01, 0.999))
@example(("jepa", 6, -8.0, 0.0, 0.375), 0.4375)  # d ln w̄ / d ln t = 2.8e14: a 2e-15 shift of t moves w̄ 120-fold
def test_trajectory_inverts_high_precision_time(case, position):
    """w̄(t(v)) = v^L within 1e-8 where that is well conditioned; everywhere, w̄(t) is the exact trajectory at a
    time within 1e-13 of t, relative (backward stability: a steep trajectory magnifies float64's rounding of t)."""
    objective, depth, log_eps, log_lam, log_rho = case
    eps, lam, rho = 10.0**log_eps, 10.0**log_lam, 10.0**log_rho
    v0 = eps ** (1 / depth)
    v_star = float(_threshold_v(objective, rho, depth, 1.0))
    if v0 >= 0.999 * v_star:
        return
    with mp.workdps(40):
        v = mp.mpf(v0) + (mp.mpf(v_star) * mp.mpf("0.9999") - mp.mpf(v0)) * mp.mpf(position)
        t = float(_reference_time(objective, lam, rho, depth, eps, v))
        expected = float(v**depth)
    got = float(trajectory(objective, lam, rho, depth, eps, t))
    if abs(got - expected) / expected <= 1e-8:
        return
    reached, at_fixed_point = _time_reaching(objective, lam, rho, depth, eps, got)
    if at_fixed_point:  # got is the fixed point: the exact trajectory must round to it by t(1 + 1e-13)
        assert float(reached) <= t * (1 + 1e-13)
    else:
        assert abs(float(reached) - t) <= 1e-13 * t


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_trajectory_matches_forward_ode_integration(objective, depth):
    lam, rho, eps = np.array([1.0, 0.5]), np.array([0.6, 0.9]), 1e-2
    t_end = 3.0 * critical_time(objective, lam, rho, depth, eps).max()
    t = np.linspace(0.0, t_end, 60)
    got = trajectory(objective, lam, rho, depth, eps, t)
    for i in range(2):
        f = _rhs(objective, lam[i], rho[i], depth)
        sol = solve_ivp(lambda _, v, f=f: f(v), (0, t_end), [eps ** (1 / depth)], t_eval=t, rtol=1e-11, atol=1e-14,
                        method="DOP853")
        np.testing.assert_allclose(got[:, i], sol.y[0] ** depth, rtol=1e-7)


def test_mae_depth_one_has_a_closed_form_trajectory():
    # L = 1: dx/dt = λ x (1 − x²) in x = v/√ρ, so x²/(1 − x²) = C e^(2λt).
    lam, rho, eps = 0.7, 2.5, 1e-3
    t = np.linspace(0, 30, 200)
    x0 = eps / np.sqrt(rho)
    c = x0**2 / (1 - x0**2) * np.exp(2 * lam * t)
    expected = np.sqrt(rho) * np.sqrt(c / (1 + c))
    np.testing.assert_allclose(trajectory("mae", lam, rho, 1, eps, t), expected, rtol=1e-10)


def test_jepa_depth_one_closed_form_critical_time():
    # L = 1: t(v) = [ρ/v0 − ρ/v + ln(v/v0) + ln((ρ − v0)/(ρ − v))] / (λρ).
    lam, rho, eps, frac = 2.0, 0.7, 1e-4, 0.5
    v = frac * rho
    expected = (rho / eps - rho / v + np.log(v / eps) + np.log((rho - eps) / (rho - v))) / (lam * rho)
    assert critical_time("jepa", lam, rho, 1, eps, frac) == pytest.approx(expected, rel=1e-13)


def test_mae_constants():
    # docs/theory.md, "MAE critical time":
    # L = 1, λ = 1, ρ = 0.6, p = ½ gives ln(1/ε) − 0.80472; L = 2 gives 1/√ε − 1.3258.
    assert critical_time("mae", 1.0, 0.6, 1, 1e-6) - np.log(1e6) == pytest.approx(-0.80472, abs=1e-5)
    assert critical_time("mae", 1.0, 0.6, 2, 1e-6) - 1e3 == pytest.approx(-1.3258, abs=1e-4)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_fixed_points_are_reached_and_stationary(objective, depth):
    rho = np.array([0.8, 1.0, 4.0])
    w_star = fixed_point(objective, rho, depth)
    exponent = depth if objective == "jepa" else depth / (depth + 1)
    np.testing.assert_allclose(w_star, rho**exponent, rtol=1e-14)
    scale = depth * w_star**3  # each term of the rate is of this size; their difference must cancel
    np.testing.assert_allclose(amplitude_rate(objective, w_star, 1.0, rho, depth) / scale, 0.0, atol=1e-13)
    late = 1e3 * critical_time(objective, 1.0, rho, depth, 1e-3).max()
    np.testing.assert_allclose(trajectory(objective, 1.0, rho, depth, 1e-3, late), w_star, rtol=1e-9)
    assert np.all(fixed_point(objective, [-1.0, 0.0], depth) == 0.0)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_amplitude_rate_is_the_derivative_of_the_trajectory(objective):
    lam, rho, depth, eps = 1.3, 0.8, 3, 1e-2
    t = critical_time(objective, lam, rho, depth, eps) * np.array([0.5, 1.0, 1.05])
    h = 1e-6 * t
    def amplitude(times):
        return trajectory(objective, lam, rho, depth, eps, times)

    numeric = (amplitude(t + h) - amplitude(t - h)) / (2 * h)
    w = trajectory(objective, lam, rho, depth, eps, t)
    np.testing.assert_allclose(amplitude_rate(objective, w, lam, rho, depth), numeric, rtol=1e-5)
    # The paper's ODE is the same vector field without the factor L (docs/theory.md, time units).
    np.testing.assert_allclose(
        amplitude_rate(objective, w, lam, rho, depth, time="paper"),
        amplitude_rate(objective, w, lam, rho, depth) / depth,
    )


def test_order_flip_table():
    # Figure 2 (c)/(f) and the learning-order table of docs/theory.md: opposite-trend preset at ε = 1e-3.
    expected_jepa = {1: [0, 1, 2, 3], 2: [1, 0, 2, 3], 3: [3, 2, 1, 0], 5: [3, 2, 1, 0]}
    for depth, order in expected_jepa.items():
        assert learning_order("jepa", OPP_LAM, OPP_RHO, depth, 1e-3).tolist() == order
        assert learning_order("mae", OPP_LAM, OPP_RHO, depth, 1e-3).tolist() == [0, 1, 2, 3]


A2 = {  # docs/theory.md learning-order table, JEPA orders for L = 1/2/3/5 (None: init above threshold)
    ("opp10", 1e-2): ["1234", "4321", "4321", None],
    ("opp10", 1e-3): ["1234", "2134", "4321", "4321"],
    ("opp10", 1e-4): ["1234", "1234", "2314", "4321"],
    ("opp10", 1e-6): ["1234", "1234", "1234", "2341"],
    ("opp10", 1e-8): ["1234"] * 4,
    ("opp30", 1e-2): ["1234", "1234", "3421", None],
    ("opp30", 1e-3): ["1234", "1234", "2134", "3421"],
    ("opp30", 1e-4): ["1234", "1234", "1234", "2341"],
    ("opp30", 1e-6): ["1234"] * 4,
    ("opp30", 1e-8): ["1234"] * 4,
    ("equal", 1e-2): ["4321", "4321", "4321", None],
    ("equal", 1e-3): ["4321"] * 4,
    ("equal", 1e-4): ["4321"] * 4,
    ("equal", 1e-6): ["4321"] * 4,
    ("equal", 1e-8): ["4321"] * 4,
}
A2_LAM = {"opp10": OPP_LAM, "opp30": np.array([1.0, 0.9, 0.8, 0.7]), "equal": np.ones(4)}


@pytest.mark.parametrize("preset, eps", list(A2))
def test_learning_order_table(preset, eps):
    for depth, expected in zip((1, 2, 3, 5), A2[(preset, eps)]):
        if expected is None:
            with pytest.raises(ValueError, match="undefined"):
                learning_order("jepa", A2_LAM[preset], OPP_RHO, depth, eps)
            continue
        order = learning_order("jepa", A2_LAM[preset], OPP_RHO, depth, eps)
        assert "".join(str(i + 1) for i in order) == expected
        assert learning_order("mae", A2_LAM[preset], OPP_RHO, depth, eps).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_claims_1_and_2_greedy_in_lambda_and_only_jepa_in_rho(depth):
    lam = np.array([0.25, 0.5, 1.0, 2.0])
    for objective in ("jepa", "mae"):
        assert learning_order(objective, lam, 1.0, depth, 1e-3).tolist() == [3, 2, 1, 0]
    assert learning_order("jepa", 1.0, OPP_RHO, depth, 1e-3).tolist() == [3, 2, 1, 0]
    assert learning_order("mae", 1.0, OPP_RHO, depth, 1e-3).tolist() == [0, 1, 2, 3]


def test_claim_2_mae_separation_is_order_one():
    times = critical_time("mae", 1.0, OPP_RHO, 5, 1e-3)
    assert times[0] == pytest.approx(62.718, abs=1e-3)
    assert times[-1] == pytest.approx(62.760, abs=1e-3)


def test_claim_4_rho_bias_grows_with_depth():
    expected = {1: 1.0044, 2: 1.0729, 3: 1.2491, 5: 2.1321}
    ratios = []
    for depth, value in expected.items():
        t = critical_time("jepa", 1.0, [0.4, 0.85], depth, 1e-3)
        ratios.append(t[0] / t[1])
        assert ratios[-1] == pytest.approx(value, abs=1e-4)
    assert np.all(np.diff(ratios) > 0)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["jepa", "mae"]), st.integers(1, 8), st.floats(-6, -1), st.floats(-1, 1))
def test_critical_time_decreases_in_lambda_as_one_over_lambda(objective, depth, log_eps, log_rho):
    lam = np.geomspace(1e-3, 1e3, 7)
    times = critical_time(objective, lam, 10.0**log_rho, depth, 10.0**log_eps)
    if np.any(times == 0):
        return
    assert np.all(np.diff(times) < 0)
    np.testing.assert_allclose(times * lam, times[0] * lam[0], rtol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_claim_8_scale_laws(depth):
    """Local slopes d ln t* / d ln ε approach −(2L−1)/L (JEPA) and −(L−1)/L (MAE; ln(1/ε) at L = 1)."""
    eps = np.array([1e-6, 1e-7, 1e-8])
    slope = {o: np.diff(np.log(critical_time(o, 1.0, 0.7, depth, eps))) / np.diff(np.log(eps)) for o in ("jepa", "mae")}
    jepa = slope["jepa"] / (-(2 * depth - 1) / depth)
    assert np.all(np.abs(jepa - 1) < 1e-2) and abs(jepa[1] - 1) < abs(jepa[0] - 1)
    if depth == 1:
        mae = critical_time("mae", 1.0, 0.7, 1, eps)
        np.testing.assert_allclose(np.diff(mae), np.log(10.0), rtol=1e-9)
    else:
        assert np.all(np.abs(slope["mae"] / (-(depth - 1) / depth) - 1) < 1e-3)


@pytest.mark.parametrize(
    "depth, eps, expected, digits",
    [(2, 1e-2, 0.991, 3), (2, 1e-4, 1.00002, 5), (2, 1e-6, 1.0000000, 6), (5, 1e-2, 0.817, 3), (5, 1e-4, 0.99993, 5)],
)
def test_claim_6_exact_over_laurent_sum(depth, eps, expected, digits):
    """docs/theory.md, JEPA critical time: exact / Laurent sum at λ = 1, ρ = 0.6 (1.00000005 at L = 2, ε = 1e-6)."""
    exact = critical_time("jepa", 1.0, 0.6, depth, eps)
    ratio = exact / critical_time_expansion("jepa", 1.0, 0.6, depth, eps, terms="sum")
    assert ratio == pytest.approx(expected, abs=0.5 * 10.0**-digits)


@pytest.mark.parametrize("objective", ["jepa", "mae"])
@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_full_expansion_converges_like_eps_to_the_one_over_l(objective, depth):
    eps = np.array([1e-6, 1e-8])
    error = np.abs(critical_time_expansion(objective, 1.0, 0.6, depth, eps, terms="full") /
                   critical_time(objective, 1.0, 0.6, depth, eps) - 1)
    assert np.all(error < 3 * eps ** (1 / depth))
    paper = critical_time_expansion(objective, 1.0, 0.6, depth, 1e-4, time="paper")
    assert paper == pytest.approx(depth * critical_time_expansion(objective, 1.0, 0.6, depth, 1e-4))


def test_expansion_terms_match_the_documented_formulas():
    lam, rho, depth, eps = 1.5, 0.6, 3, 1e-4
    n = np.arange(1, 2 * depth)
    paper_sum = np.sum(1 / (n * rho ** (2 * depth - n - 1) * eps ** (n / depth))) / lam
    assert critical_time_expansion("jepa", lam, rho, depth, eps) == pytest.approx(paper_sum, rel=1e-14)
    assert critical_time_expansion("jepa", lam, rho, depth, eps, terms="leading") == pytest.approx(
        1 / (5 * lam * eps ** (5 / 3)))
    assert critical_time_expansion("mae", lam, rho, 1, eps, terms="leading") == pytest.approx(np.log(1 / eps) / lam)
    assert critical_time_expansion("mae", lam, rho, depth, eps) == pytest.approx(1 / (2 * lam * eps ** (2 / 3)))


def test_time_units_are_never_mixed():
    t = np.array([10.0, 100.0, 1e4])
    for objective in ("jepa", "mae"):
        gf = critical_time(objective, OPP_LAM, OPP_RHO, 3, 1e-3)
        np.testing.assert_allclose(critical_time(objective, OPP_LAM, OPP_RHO, 3, 1e-3, time="paper"), 3 * gf)
        np.testing.assert_allclose(
            trajectory(objective, OPP_LAM, OPP_RHO, 3, 1e-3, 3 * t, time="paper"),
            trajectory(objective, OPP_LAM, OPP_RHO, 3, 1e-3, t),
        )


def test_shapes_broadcast_like_scipy():
    lam = np.ones((2, 1))
    rho = np.array([0.5, 0.7, 0.9])
    eps = np.array([1e-3, 2e-3, 3e-3])
    t = np.zeros((4, 5))
    assert trajectory("jepa", lam, rho, 2, eps, t).shape == (4, 5, 2, 3)
    assert critical_time("mae", lam, rho, 2, eps).shape == (2, 3)
    assert learning_order("jepa", lam, rho, 2, eps).shape == (2, 3)
    np.testing.assert_allclose(trajectory("jepa", lam, rho, 2, eps, t)[0, 0], np.broadcast_to(eps, (2, 3)))
    assert np.ndim(trajectory("mae", 1.0, 0.5, 2, 1e-3, 5.0)) == 0


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_unlearnable_features_never_cross_and_decay(objective):
    lam, rho = np.array([-1.0, -0.2, 0.0]), np.array([-0.5, -2.0, 0.5])
    assert np.all(np.isinf(critical_time(objective, lam, rho, 2, 1e-2)))
    assert np.all(np.isinf(critical_time(objective, 0.0, 0.0, 2, 1e-2)))
    t = np.geomspace(1, 1e8, 30)
    w = trajectory(objective, lam, rho, 2, 1e-2, t)
    assert np.all(np.diff(w[:, :2], axis=0) < 0) and np.all(w[:, :2] > 0)
    np.testing.assert_allclose(w[:, 2], 1e-2)
    # decay against the high-precision reference
    v_end = 0.3 * 1e-2**0.5
    t_ref = float(_reference_time(objective, -1.0, -0.5, 2, 1e-2, v_end))
    assert float(trajectory(objective, -1.0, -0.5, 2, 1e-2, t_ref)) == pytest.approx(v_end**2, rel=1e-10)
    assert learning_order(objective, [1.0, -1.0, 0.5], [0.5, -0.5, 0.5], 2, 1e-3).tolist() == [0, 2, 1]


@pytest.mark.parametrize("objective", ["jepa", "mae"])
def test_init_above_the_fixed_point_relaxes_down_to_it(objective):
    depth, rho, eps = 2, 0.05, 0.4
    w = trajectory(objective, 1.0, rho, depth, eps, np.geomspace(1e-2, 1e9, 40))
    assert np.all(np.diff(w) <= 0)
    assert w[-1] == pytest.approx(float(fixed_point(objective, rho, depth)), rel=1e-8)
    assert critical_time(objective, 1.0, rho, depth, eps) == 0.0


BAD_INPUTS = [
    (dict(objective="vicreg"), "objective"),
    (dict(depth=0), "depth"),
    (dict(depth=2.0), "depth"),
    (dict(depth=True), "depth"),
    (dict(eps=0.0), "eps"),
    (dict(eps=1.0), "eps"),
    (dict(eps=float("nan")), "eps"),
    (dict(lam=float("inf")), "lam"),
    (dict(lam="big"), "lam"),
    (dict(rho=[0.5, float("nan")]), "rho"),
    (dict(lam=[1.0, 2.0], rho=[0.5, 0.6, 0.7]), "broadcast"),
    (dict(lam=1.0, rho=-0.5), "share a sign"),
    (dict(lam=1.0, rho=0.0), "rho = 0"),
]


@pytest.mark.parametrize("change, message", BAD_INPUTS)
@pytest.mark.parametrize("function", ["trajectory", "critical_time", "critical_time_expansion", "learning_order"])
def test_bad_inputs_raise_value_errors_naming_the_argument(function, change, message):
    args = dict(objective="jepa", lam=[1.0, 0.9], rho=[0.5, 0.6], depth=2, eps=1e-3) | change
    call = {
        "trajectory": lambda a: trajectory(**a, t=[0.0, 1.0]),
        "critical_time": lambda a: critical_time(**a),
        "critical_time_expansion": lambda a: critical_time_expansion(**a),
        "learning_order": lambda a: learning_order(**a),
    }[function]
    with pytest.raises(ValueError, match=message):
        call(args)


def test_more_bad_inputs():
    with pytest.raises(ValueError, match="t must be >= 0"):
        trajectory("jepa", 1.0, 0.5, 2, 1e-3, [-1.0])
    with pytest.raises(ValueError, match="t must be finite"):
        trajectory("jepa", 1.0, 0.5, 2, 1e-3, [np.inf])
    with pytest.raises(ValueError, match="rho = 0"):
        trajectory("jepa", 0.0, 0.0, 2, 1e-3, [1.0])
    with pytest.raises(ValueError, match="frac"):
        critical_time("jepa", 1.0, 0.5, 2, 1e-3, frac=1.0)
    with pytest.raises(ValueError, match="time must be"):
        critical_time("jepa", 1.0, 0.5, 2, 1e-3, time="seconds")
    with pytest.raises(ValueError, match="terms"):
        critical_time_expansion("jepa", 1.0, 0.5, 2, 1e-3, terms="all")
    with pytest.raises(ValueError, match="undefined"):
        learning_order("jepa", [1.0, 1.0], [0.5, 0.01], 2, 1e-3)
    with pytest.raises(ValueError, match="feature axis"):
        learning_order("jepa", 1.0, 0.5, 2, 1e-3)
    with pytest.raises(ValueError, match="too small for float64"):
        trajectory("jepa", 1.0, 0.5, 1, 1e-320, [1.0])
    with pytest.raises(ValueError, match="wbar"):
        amplitude_rate("jepa", -0.1, 1.0, 0.5, 2)


def test_format_order_is_one_based_with_never_learned_in_brackets():
    assert format_order([3, 2, 1, 0]) == "4321"
    assert format_order(np.array([1, 0]), sep=" ") == "2 1"
    assert format_order([0, 2], never=[1, 3]) == "13 (24 not learned)"
