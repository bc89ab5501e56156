"""Experiments: each writes its plot, table and statement; the CLI runs one; bad names are refused."""

import argparse
import json

import pytest

from jepalab.linear.commands import register
from jepalab.linear.experiments import EXPERIMENTS, run_experiment


def test_the_cli_offers_every_experiment_of_the_registry():
    parser = argparse.ArgumentParser(prog="jepalab")
    register(parser.add_subparsers(dest="command", required=True))
    for name in EXPERIMENTS:
        assert parser.parse_args(["linear", "experiment", name]).name == name
    with pytest.raises(SystemExit):
        parser.parse_args(["linear", "experiment", "bogus"])


def test_static_experiment_shows_jepa_avoiding_the_noisy_feature(tmp_path):
    summary = run_experiment("static", tmp_path)
    assert summary["jepa_flips_at"] and not summary["mae_flips_at"]
    assert summary["held"] is True and summary["rule"].startswith("JEPA learns the noisy feature last")
    assert "JEPA learns the noisy feature last from noise variance" in summary["statement"]
    assert (tmp_path / "static.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "static.json").read_text())
    assert saved["statement"] == summary["statement"] and len(saved["rows"]) == 12
    assert len((tmp_path / "static.csv").read_text().splitlines()) == 13


def test_cli_runs_an_experiment(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="jepalab")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["linear", "experiment", "dynamic", "--out", str(tmp_path)])
    assert args.handler(args) == 0
    assert "dynamic AR(1) model" in capsys.readouterr().out
    assert (tmp_path / "dynamic.png").exists() and (tmp_path / "dynamic.csv").exists()


def test_unknown_experiment_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="experiment must be one of"):
        run_experiment("bogus", tmp_path)
