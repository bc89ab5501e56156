"""Statement builders follow the numbers: each is fed results that contradict its usual outcome."""

import numpy as np

from jepalab.linear import statements

THEORY = np.array([10.0, 11.0, 13.0, 16.0])  # smallest gap 1.0


def _ema_row(m, lag, kept, delay=0.01):
    return {"momentum": m, "ema_lag_time": lag, "order_kept": kept, **{f"delay_{i + 1}": delay for i in range(4)}}


def test_ema_statement_when_every_momentum_keeps_the_order():
    text = statements.ema_statement([_ema_row(0.0, 0.0, True), _ema_row(0.9, 0.5, True)], "4321", THEORY, 2, 1e-2,
                                    [0.4, 0.55, 0.7, 0.85])
    assert "holds for momentum 0, 0.9." in text and "breaks" not in text
    assert "survived every lag tested, up to 0.5× that gap" in text


def test_ema_statement_when_the_order_breaks_at_short_lags():
    rows = [_ema_row(0.0, 0.0, False, delay=-0.2), _ema_row(0.9, 0.1, True), _ema_row(0.99, 2.0, False)]
    text = statements.ema_statement(rows, "4321", THEORY, 2, 1e-2, [0.4, 0.55, 0.7, 0.85])
    assert "it breaks for 0, 0.99" in text
    assert "some come earlier than the theory's" in text
    assert "kept and broken lags overlap" in text and "intact" not in text


def test_ema_statement_when_no_momentum_keeps_the_order():
    text = statements.ema_statement([_ema_row(0.9, 3.0, False)], "4321", THEORY, 2, 1e-2, [0.4, 0.55, 0.7, 0.85])
    assert "holds for no momentum" in text and "broke at every lag tested, from 3×" in text


def _nondiag_row(s, objective, error, match=True):
    return {"mixing": s, "objective": objective, "max_rel_error": error, "order_match": match,
            "final_amp_ratio_min": 0.9, "final_amp_ratio_max": 1.1}


def test_nondiagonal_statement_reports_errors_that_shrink_with_mixing():
    rows = [_nondiag_row(0.0, o, 0.3) for o in ("jepa", "mae")] + [_nondiag_row(0.5, o, 0.01, o == "mae")
                                                                   for o in ("jepa", "mae")]
    text = statements.nondiagonal_statement(rows, 3, 1e-3)
    assert "for JEPA it does not grow monotonically with s (30%, 1%)" in text
    assert "differ for s=0.5 jepa" in text and "grows with s" not in text


def _init_rows(objective, init, kept, learned, held, runs=2):
    return [{"objective": objective, "init": init, "order_kept": kept, "learned": learned, "held_at_end": held}
            for _ in range(runs)]


def test_init_statement_without_collapse_or_loss():
    rows = _init_rows("jepa", "gaussian", True, 4, 4) + _init_rows("mae", "gaussian", True, 4, 4)
    text = statements.init_statement(rows, 4, 3, 1e-3, 2)
    assert "holds in every run for: JEPA gaussian, MAE gaussian" in text
    assert "reordered (fraction of runs) for: no init" in text
    assert "never learned within the horizon (mean learned): none" in text
    assert "learned and then lost again by the end: none" in text
    assert "collapses" not in text


def test_init_statement_reports_mae_collapse_and_jepa_loss():
    rows = _init_rows("jepa", "aligned", False, 4, 3) + _init_rows("mae", "aligned", True, 2, 2)
    text = statements.init_statement(rows, 4, 3, 1e-3, 2)
    assert "reordered (fraction of runs) for: JEPA aligned (1.00)" in text
    assert "never learned within the horizon (mean learned): MAE aligned (2.00 of 4)" in text
    assert "learned and then lost again by the end: JEPA aligned" in text


def test_finite_sample_statement_when_no_setting_keeps_the_order():
    table = {"jepa population": {"order_kept": 0.5, "median_rel_error": 0.1}}
    text = statements.finite_sample_statement(table, {"jepa": 0.25}, 2, 1e-2, 3)
    assert "only for: no setting" in text and "at least 25.0% (JEPA)" in text


def _noise_rows(jepa, mae, theory_factor=1.0):
    levels = (0.0, 0.5, 1.0)
    return [{"noise_var": v, "objective": o, "ratio_sim": r, "ratio_theory": r * theory_factor}
            for o, ratios in (("jepa", jepa), ("mae", mae)) for v, r in zip(levels, ratios)]


def test_noise_statement_when_mae_avoids_the_noise_and_jepa_does_not():
    text = statements.noise_statement(_noise_rows([0.5, 0.6, 0.7], [0.9, 1.2, 1.5], 1.1), 3, 1e-2, 1, 0, "model")
    assert "JEPA learns the noisy feature first at every noise level" in text
    assert "MAE learns the noisy feature last from noise variance 0.5 on" in text
    assert "departs from the diagonal theory" in text and "matches" not in text


def test_noise_statement_when_the_simulator_matches():
    text = statements.noise_statement(_noise_rows([1.2, 1.3, 1.4], [0.9, 0.9, 0.9]), 3, 1e-2, 1, 0, "model")
    assert "JEPA learns the noisy feature last already without noise" in text
    assert "matches the diagonal theory" in text


def test_nonlinear_statement_lists_kept_and_changed_orders():
    rows = [{"objective": "jepa", "activation": "relu", "order_sim": "1234", "order_theory": "4321",
             "order_kept": False},
            {"objective": "mae", "activation": "tanh", "order_sim": "1234", "order_theory": "1234",
             "order_kept": True}]
    text = statements.nonlinear_statement(rows, [0.4, 0.55, 0.7, 0.85], 2, 1e-2)
    assert "carries over for: MAE tanh; it does not for: JEPA relu." in text
    assert "Interpretation:" in text
