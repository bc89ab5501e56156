import subprocess
import sys

import pytest

from jepalab.cli import main


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
