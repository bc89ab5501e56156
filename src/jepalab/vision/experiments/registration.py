"""The git record of a pre-registration: a confirmatory plan.json must be committed, as it stands, before every code
revision that trained its runs and before its results.csv was first committed. :func:`registration_record` reads
that order from git and raises where git shows otherwise; outside a full clone it says it could not check.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["RegistrationError", "git", "in_work_tree", "registration_record", "trained_revisions"]


class RegistrationError(ValueError):
    """Git shows a plan that was not committed before the code that trained its runs, or before its results."""


def trained_revisions(first: object, sessions: Iterable[dict[str, Any]]) -> set[str]:
    """The code revisions that trained a run: the one that started it (``first``) and every recorded session's."""
    return {str(r) for r in [first, *(s.get("git_revision") for s in sessions)] if r}


def git(folder: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """``git -C folder args`` (output captured), or None where git cannot run."""
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def _stdout(folder: Path, *args: str) -> str | None:
    """git's stripped output, or None where it failed."""
    found = git(folder, *args)
    return found.stdout.strip() if found is not None and found.returncode == 0 else None


def in_work_tree(folder: Path) -> bool:
    """Whether ``folder`` lies inside a git work tree."""
    return _stdout(folder, "rev-parse", "--is-inside-work-tree") == "true"


def _contains(folder: Path, revision: str, commit: str) -> bool | None:
    """Whether ``revision``'s history contains ``commit`` (None: git does not know ``revision``)."""
    found = git(folder, "merge-base", "--is-ancestor", commit, revision)
    return None if found is None or found.returncode not in (0, 1) else found.returncode == 0


def _unchecked(folder: Path) -> str | None:
    """Why git cannot show this folder's registration order, or None where it can."""
    if not in_work_tree(folder):
        return "not in a git work tree"
    if _stdout(folder, "rev-parse", "--is-shallow-repository") != "false":
        return "a shallow clone: the history before its first commit is missing"
    return None


def _training_problem(folder: Path, revision: str, plan_commit: str) -> str | None:
    """What is wrong with runs trained at ``revision`` under the plan committed at ``plan_commit``, if anything."""
    if revision.endswith("-dirty"):
        return f"runs were trained from uncommitted code ({revision})"
    contained = _contains(folder, revision, plan_commit)
    if contained is None:
        return (f"the revision {revision} that trained runs is not in this repository's history (train from a "
                "checkout of the repository that holds the plan, so that git can show the order)")
    return None if contained else f"runs were trained at {revision[:12]}, which does not contain the plan's commit"


def registration_record(folder: Path, revisions: Iterable[str]) -> dict[str, Any]:
    """``{"checked": True, "plan_commit", "plan_committed", "training_revisions", "results_commit"}`` for
    ``folder``: the last commit that changed plan.json must be contained in every one of ``revisions`` (the code that
    trained its runs) and strictly precede the first commit of results.csv (None while it is uncommitted). Raise
    :class:`RegistrationError` naming what git shows otherwise; ``{"checked": False, "reason"}`` where git cannot
    show it."""
    folder = Path(folder)
    reason = _unchecked(folder)
    if reason is not None:
        return {"checked": False, "reason": reason}
    plan_commit = _stdout(folder, "log", "-1", "--format=%H", "--", "plan.json")
    if not plan_commit:
        raise RegistrationError(f"{folder / 'plan.json'} is not committed: commit the plan before any run")
    revisions = sorted(set(revisions))
    for revision in revisions:
        problem = _training_problem(folder, revision, plan_commit)
        if problem is not None:
            raise RegistrationError(f"{folder / 'plan.json'} (committed at {plan_commit[:12]}): {problem}")
    added = (_stdout(folder, "log", "--diff-filter=A", "--format=%H", "--", "results.csv") or "").split()
    results_commit = added[-1] if added else None
    if results_commit is not None and (results_commit == plan_commit
                                       or not _contains(folder, results_commit, plan_commit)):
        raise RegistrationError(f"{folder / 'results.csv'} was first committed at {results_commit[:12]}, not after "
                                f"its plan ({plan_commit[:12]})")
    return {"checked": True, "plan_commit": plan_commit,
            "plan_committed": _stdout(folder, "log", "-1", "--format=%cI", plan_commit),
            "training_revisions": revisions, "results_commit": results_commit}
