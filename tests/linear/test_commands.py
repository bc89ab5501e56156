"""``jepalab linear`` through a parser built from this module's register() alone."""

import argparse
import json

import pytest

from jepalab.linear.commands import register


def _run(argv):
    parser = argparse.ArgumentParser(prog="jepalab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args)


def test_validate_writes_the_table_and_passes(tmp_path, capsys):
    code = _run(["linear", "validate", "--out", str(tmp_path), "--depths", "1", "2", "--eps", "1e-2",
                 "--jepa-step", "0.5", "--mae-step", "0.05"])
    assert code == 0
    summary = json.loads((tmp_path / "validation.json").read_text())
    assert summary["passed"] and len(summary["cases"]) == 8
    assert (tmp_path / "validation.png").stat().st_size > 1000
    rows = (tmp_path / "validation.csv").read_text().splitlines()
    assert len(rows) == 1 + 8 * 4 and "t_theory" in rows[0]
    assert "PASSED" in capsys.readouterr().out


def test_validate_exits_nonzero_when_out_of_tolerance(tmp_path, capsys):
    code = _run(["linear", "validate", "--out", str(tmp_path), "--depths", "1", "--objectives", "mae", "--eps",
                 "1e-2", "--methods", "gd", "--mae-step", "0.5", "--tolerance", "1e-4"])
    assert code == 1
    assert "FAIL" in capsys.readouterr().out
    assert json.loads((tmp_path / "validation.json").read_text())["passed"] is False


def test_validate_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="eps"):
        _run(["linear", "validate", "--out", str(tmp_path), "--eps", "2"])
