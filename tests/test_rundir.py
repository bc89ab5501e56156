import json
import os

import numpy as np
import pytest

from jepalab.rundir import atomic_write_text, command_line, environment, new_run_dir, output_dir, write_csv, write_json


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_json_and_csv_handle_numpy_and_non_finite(tmp_path):
    write_json(tmp_path / "a.json", {"x": np.float64(1.5), "v": np.arange(3), "bad": float("nan")})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "v": [0, 1, 2], "bad": "nan"}
    write_csv(tmp_path / "a.csv", [{"a": 1, "b": np.float32(2.0)}, {"a": 3, "c": "z"}])
    assert (tmp_path / "a.csv").read_text().splitlines() == ["a,b,c", "1,2.0,", "3,,z"]


def test_new_run_dir_is_unique(tmp_path):
    first, second = new_run_dir(tmp_path, "demo"), new_run_dir(tmp_path, "demo")
    assert first != second and first.is_dir() and second.is_dir()


def test_environment_records_versions():
    env = environment()
    assert env["packages"]["numpy"] == np.__version__
    assert env["cpu_count"] >= 1


def test_command_line_reads_as_it_is_typed_again():
    module = ["/tmp/clone/src/jepalab/__main__.py", "experiment", "depth", "seeds=[3,4]", "--out", "my results"]
    assert command_line(module) == "python -m jepalab experiment depth 'seeds=[3,4]' --out 'my results'"
    assert command_line([".venv/bin/jepalab", "report", "--quick"]) == "jepalab report --quick"
    assert command_line(["benchmarks/theory.py"]) == "theory.py"
    assert command_line([]) == ""


def test_output_dir_uses_the_given_folder_or_makes_a_new_run(tmp_path):
    given = output_dir(tmp_path / "a" / "b", "demo")
    assert given == tmp_path / "a" / "b" and given.is_dir()
    fresh = output_dir(None, "demo", root=tmp_path)
    assert fresh.parent == tmp_path and fresh.name.startswith("demo-")
