"""jepalab.eval.ridge: the eigendecomposition path against direct solves and least squares (metrics.md §4)."""

import numpy as np
import pytest

from jepalab.eval import RIDGE_GRID, RidgePath


def _data(seed=0, n=200, d=10, k=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    y = x @ rng.normal(size=(d, k)) + rng.normal(size=(n, k)) + 2.0
    return x, y


def test_ridge_tends_to_least_squares():
    x, y = _data()
    weights, bias = RidgePath.fit(x, y).coef(1e-10)
    solution = np.linalg.lstsq(np.hstack([x, np.ones((200, 1))]), y, rcond=None)[0]
    assert weights == pytest.approx(solution[:-1], abs=1e-8)
    assert bias == pytest.approx(solution[-1], abs=1e-8)


@pytest.mark.parametrize("lam", [1e-3, 1.0, 37.0, 1e4])
def test_eigen_path_equals_direct_solve(lam):
    x, y = _data(1)
    xc, yc = x - x.mean(0), y - y.mean(0)
    direct = np.linalg.solve(xc.T @ xc + lam * np.eye(10), xc.T @ yc)
    path = RidgePath.fit(x, y)
    weights, bias = path.coef(lam)
    assert weights == pytest.approx(direct, abs=1e-8)
    assert bias == pytest.approx(y.mean(0) - x.mean(0) @ direct, abs=1e-8)
    new = np.random.default_rng(2).normal(size=(7, 10))
    assert path.predict(new, [0.5, lam])[1] == pytest.approx(new @ direct + bias, abs=1e-8)


def test_ridge_vector_target_and_grid():
    x, y = _data(3)
    path = RidgePath.fit(x, y[:, 0])
    assert path.predict(x, [1.0]).shape == (1, 200, 1)
    assert len(RIDGE_GRID) == 25 and RIDGE_GRID[0] == pytest.approx(1e-6) and RIDGE_GRID[-1] == pytest.approx(100)
    with pytest.raises(ValueError, match="lambda"):
        path.coef(0.0)
    with pytest.raises(ValueError, match="rows"):
        RidgePath.fit(x, y[:-1])
    with pytest.raises(ValueError, match="features"):
        path.predict(x[:, :5], [1.0])
