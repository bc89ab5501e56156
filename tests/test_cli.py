import subprocess
import sys

import pytest

from jepalab.cli import build_parser, main, parse_args


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "theory" in out and "demo" in out


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "jepalab", "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith("jepalab ")


def test_theory_order_prints_both_objectives(capsys):
    code = main(["theory", "order", "--lam", "1", "0.9667", "0.9333", "0.9", "--rho", "0.4", "0.55", "0.7", "0.85",
                 "--depth", "3", "--eps", "1e-3"])
    out = capsys.readouterr().out
    assert code == 0
    assert "JEPA order (first learned first): 4 3 2 1" in out
    assert "MAE order (first learned first): 1 2 3 4" in out


def test_user_errors_are_one_line_without_traceback(capsys):
    code = main(["theory", "order", "--lam", "1", "--rho", "0.5", "0.6", "--depth", "3", "--eps", "1e-3"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("jepalab: error: --lam has 1 values") and "Traceback" not in err
    assert main(["theory", "order", "--lam", "1", "--rho", "0.5", "--depth", "0", "--eps", "1e-3"]) == 2
    assert "depth must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError):
        main(["--traceback", "theory", "order", "--lam", "1", "--rho", "0.5", "--depth", "0", "--eps", "1e-3"])


@pytest.mark.parametrize(
    ("argv", "dest", "expected"),
    [
        (["pretrain", "cfg.yaml", "a=1", "--out", "X", "b=2"], "items", ["cfg.yaml", "a=1", "b=2"]),
        (["pretrain", "cfg.yaml", "--stop-after", "3", "a=1", "--dry-run", "b.c=[1, 2]"], "items",
         ["cfg.yaml", "a=1", "b.c=[1, 2]"]),
        (["data", "stats", "cfg.yaml", "--images", "3", "a=1"], "items", ["cfg.yaml", "a=1"]),
        (["experiment", "depth", "--quick", "epochs=5", "--out", "X", "seeds=[0]"], "items",
         ["depth", "epochs=5", "seeds=[0]"]),
        (["eval", "RUN", "--device", "cpu", "probe=ridge"], "set", ["probe=ridge"]),
    ],
)
def test_overrides_are_accepted_anywhere_on_the_line(argv, dest, expected):
    args = parse_args(build_parser(), argv)
    assert getattr(args, dest) == expected


@pytest.mark.parametrize("argv", [["pretrain", "cfg.yaml", "a=1", "--bogus"],
                                  ["theory", "order", "--lam", "1", "--rho", "1", "--depth", "1", "--eps", "0.1",
                                   "x=1"]])
def test_unknown_arguments_are_still_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(build_parser(), argv)
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
