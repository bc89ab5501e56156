"""The git record of a pre-registration: a confirmatory plan committed before the code that trained its runs and
before its results passes; one committed after, or with its results, or runs from unknown or uncommitted code, fail."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from jepalab.vision.experiments.registration import RegistrationError, registration_record
from jepalab.vision.experiments.results import ResultsMismatch, registration


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    """Write ``files`` under ``repo``, commit them; the new commit's hash."""
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run([*git, "add", *files], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def history(tmp_path: Path) -> dict[str, str]:
    """A repository with code, then a plan in results/m/, then more code: name → commit."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return {"before": _commit(tmp_path, {"code.py": "a = 1\n"}, "code"),
            "plan": _commit(tmp_path, {"results/m/plan.json": "{}\n"}, "plan"),
            "after": _commit(tmp_path, {"code.py": "a = 2\n"}, "more code")}


def test_a_plan_committed_before_the_training_code_is_recorded(tmp_path: Path, history: dict[str, str]) -> None:
    record = registration_record(tmp_path / "results" / "m", [history["after"], history["plan"], history["after"]])
    assert record["checked"] and record["plan_commit"] == history["plan"]
    assert record["training_revisions"] == sorted({history["after"], history["plan"]})
    assert record["results_commit"] is None and record["plan_committed"].startswith("20")
    results = _commit(tmp_path, {"results/m/results.csv": "seed\n0\n"}, "results")
    assert registration_record(tmp_path / "results" / "m", [history["after"]])["results_commit"] == results


@pytest.mark.parametrize(("revision", "message"), [("before", "does not contain the plan's commit"),
                                                   ("dirty", "uncommitted code"),
                                                   ("unknown", "not in this repository's history")])
def test_runs_trained_outside_the_plan_s_history_are_rejected(tmp_path: Path, history: dict[str, str],
                                                                revision: str, message: str) -> None:
    trained = {"before": history["before"], "dirty": history["after"] + "-dirty", "unknown": "0123abcd" * 5}
    with pytest.raises(RegistrationError, match=message):
        registration_record(tmp_path / "results" / "m", [history["after"], trained[revision]])


def test_a_plan_changed_with_its_results_is_rejected(tmp_path: Path, history: dict[str, str]) -> None:
    """The plan's last change counts: rewritten in the commit that adds the results, it no longer precedes them."""
    _commit(tmp_path, {"results/m/plan.json": '{"changed": true}\n', "results/m/results.csv": "seed\n"}, "both")
    with pytest.raises(RegistrationError, match="not after its plan"):
        registration_record(tmp_path / "results" / "m", [])


def test_git_that_cannot_show_the_order_says_so(tmp_path: Path, history: dict[str, str]) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-plain"
    outside.mkdir()
    assert registration_record(outside, [history["plan"]]) == {"checked": False, "reason": "not in a git work tree"}
    shallow = tmp_path.parent / f"{tmp_path.name}-shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", tmp_path.as_uri(), str(shallow)], check=True)
    assert "shallow" in registration_record(shallow / "results" / "m", [history["before"]])["reason"]
    (tmp_path / "unplanned").mkdir()
    with pytest.raises(RegistrationError, match="not committed"):
        registration_record(tmp_path / "unplanned", [])


def test_a_results_folder_s_training_revisions_come_from_its_provenance(tmp_path: Path,
                                                                        history: dict[str, str]) -> None:
    folder = tmp_path / "results" / "m"
    with pytest.raises(FileNotFoundError, match=r"provenance\.json"):
        registration(folder)
    sessions = [{"git_revision": history["after"]}, {"git_revision": history["before"]}]  # one resumed too early
    (folder / "provenance.json").write_text(json.dumps({"git_revisions": [history["plan"]],
                                                        "runs": [{"train_sessions": sessions}]}))
    with pytest.raises(ResultsMismatch, match=history["before"][:12]):
        registration(folder)
    sessions.pop()
    (folder / "provenance.json").write_text(json.dumps({"git_revisions": [history["plan"]],
                                                        "runs": [{"train_sessions": sessions}]}))
    assert registration(folder)["training_revisions"] == sorted({history["plan"], history["after"]})
