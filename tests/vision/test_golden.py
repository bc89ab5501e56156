"""Golden behaviour of the vision layer, fixed before it is reorganised: 8 logged steps of each method's pico run
and a tiny run's evaluation numbers must not change when modules move. ``python tests/vision/test_golden.py``
rewrites tests/vision/golden.json (only after a deliberate change of behaviour, said in the commit)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pretrain_helpers import run_pretrain, step_losses, write_tiny_fmnist

GOLDEN = Path(__file__).with_name("golden.json")
METHODS = ("ijepa", "mae", "ecijepa")
EVAL_KEYS = ("probe", "knn20", "knn200", "rankme", "lidar", "top_probe", "bottom_probe", "cca_delta", "cka_delta")


def measure(root: Path, work: Path) -> dict[str, Any]:
    """Every method's step → loss over 8 steps (fp32, one thread) and the eval numbers of the I-JEPA run."""
    from jepalab.vision.readout.evaluation import EvalSettings, evaluate_run

    out: dict[str, Any] = {"losses": {}}
    for method in METHODS:
        extra = ("ijepa.predictor_dim=32", "ijepa.predictor_depth=1") if method == "ecijepa" else ()
        run = run_pretrain(method, root, work / method, "data.limit=64", *extra)  # 8 steps of 16
        out["losses"][method] = {str(step): loss for step, loss in step_losses(run).items()}
    settings = EvalSettings(train_images=300, test_images=100, probe="ridge", lidar_images=8, lidar_views=2,
                            readouts=("mean",))
    result = evaluate_run(work / "ijepa", "last", settings, progress=False)
    rows = {"trained": result["checkpoints"][-1], **result["baselines"]}
    out["eval"] = {name: {key: row[key] for key in EVAL_KEYS} for name, row in rows.items()}
    return out


@pytest.mark.skipif(not GOLDEN.is_file(), reason="tests/vision/golden.json not written yet")
def test_losses_and_eval_numbers_match_the_golden_record(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    (tmp_path / "data").mkdir()
    measured = measure(write_tiny_fmnist(tmp_path / "data", n=400), tmp_path / "runs")
    for method in METHODS:
        assert measured["losses"][method].keys() == golden["losses"][method].keys()
        for step, loss in golden["losses"][method].items():
            assert measured["losses"][method][step] == pytest.approx(loss, rel=1e-5), (method, step)
    for name, row in golden["eval"].items():
        for key, value in row.items():
            assert measured["eval"][name][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, key)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "data").mkdir()
        record = measure(write_tiny_fmnist(Path(work) / "data", n=400), Path(work) / "runs")
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
