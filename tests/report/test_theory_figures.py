import csv
import json

import numpy as np
import pytest

from jepalab.cli import main
from jepalab.report.theory_figures import DepthSweepParams, Figure2Params, depth_sweep, figure2


def test_figure2_writes_every_artifact_with_the_papers_orders(tmp_path):
    summary = figure2(tmp_path, Figure2Params(n_times=50))
    for name in ("figure2.png", "figure2.svg", "figure2_curves.csv", "figure2.json"):
        assert (tmp_path / name).stat().st_size > 0
    orders = {(p["objective"], p["panel"]): p["order"] for p in summary["panels"]}
    assert orders[("jepa", "lambda")] == orders[("mae", "lambda")] == [4, 3, 2, 1]  # both greedy in λ
    assert orders[("jepa", "rho")] == [4, 3, 2, 1] and orders[("mae", "rho")] == [1, 2, 3, 4]  # only JEPA in ρ
    assert orders[("jepa", "opposite")] == [4, 3, 2, 1] and orders[("mae", "opposite")] == [1, 2, 3, 4]  # flipped
    rows = list(csv.DictReader((tmp_path / "figure2_curves.csv").open()))
    assert len(rows) == 2 * 3 * 4 * 50
    ratio = np.array([float(r["wbar_over_fixed_point"]) for r in rows])
    assert ratio.min() >= 0 and ratio.max() <= 1 + 1e-9
    params = json.loads((tmp_path / "figure2.json").read_text())["params"]
    assert params["depth"] == 3 and params["eps"] == 1e-3


def test_depth_sweep_orders_and_ratios(tmp_path):
    params = DepthSweepParams(depths=(1, 2, 3, 5), eps_grid=(1e-2, 1e-3), ratio_eps=(1e-4, 1e-3))
    summary = depth_sweep(tmp_path, params)
    cells = {(c["objective"], c["depth"], c["eps"]): c["order"] for c in summary["orders"]}
    assert [cells[("jepa", d, 1e-3)] for d in (1, 2, 3, 5)] == ["1234", "2134", "4321", "4321"]
    assert cells[("jepa", 5, 1e-2)] is None
    assert all(cells[("mae", d, 1e-3)] == "1234" for d in (1, 2, 3, 5))
    rows = list(csv.DictReader((tmp_path / "depth_sweep_ratio.csv").open()))
    jepa = {(int(r["depth"]), float(r["eps"])): float(r["ratio"]) for r in rows if r["objective"] == "jepa"}
    assert jepa[(5, 1e-3)] == pytest.approx(2.1321, abs=1e-4)
    assert (tmp_path / "depth_sweep.png").stat().st_size > 0


def test_cli_figure_commands_and_bad_parameters(tmp_path, capsys):
    assert main(["theory", "figure2", "--out", str(tmp_path / "f"), "--depth", "2", "--n-times", "20"]) == 0
    assert (tmp_path / "f" / "figure2.png").exists()
    assert main(["theory", "depth-sweep", "--out", str(tmp_path / "d"), "--depths", "1", "2", "--eps-grid", "1e-3",
                 "--ratio-eps", "1e-3", "1e-4"]) == 0
    assert "jepa       1e-03    1234    2134" in capsys.readouterr().out
    assert main(["theory", "figure2", "--out", str(tmp_path / "g"), "--n-times", "1"]) == 2
    assert main(["theory", "figure2", "--out", str(tmp_path / "g"), "--eps", "2"]) == 2
    assert "eps must lie in the open interval (0, 1)" in capsys.readouterr().err
