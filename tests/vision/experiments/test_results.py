"""Results folders: the verdict is recomputed from results.csv by the rule; a tampered file is rejected and named;
a standard run needs its committed plan; shared runs are trained once."""

from __future__ import annotations

import csv
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from fake_runs import install

from jepalab.vision.experiments import ExperimentSettings, run_experiments, write_plan
from jepalab.vision.experiments.registry import experiment
from jepalab.vision.experiments.results import ResultsMismatch, check_plan, folder_name, plan, summary_writer, verify
from jepalab.vision.experiments.runner import resummarise

NAMES = ("noisy-features", "variance-subspaces", "depth")
SETTINGS = ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1), depths=(1, 4))


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...] = NAMES) -> dict:
    install(monkeypatch)
    return run_experiments(names, {n: tmp_path / n for n in names}, SETTINGS, tmp_path / "store", say=lambda _: None)


def test_shared_runs_are_trained_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained = install(monkeypatch)
    run_experiments(NAMES, {n: tmp_path / n for n in NAMES}, SETTINGS, tmp_path / "store", say=lambda _: None)
    # noisy-features: 2 strengths × 2 methods × 3 seeds; variance-subspaces reuses its clean runs; depth adds depth 1
    assert len(trained) == 12 + 6 and set(trained.values()) == {1}
    again = install(monkeypatch)
    run_experiments(NAMES, {n: tmp_path / n for n in NAMES}, SETTINGS, tmp_path / "store", say=lambda _: None)
    assert not again  # everything reused


def test_a_results_folder_is_recomputed_from_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summaries = _run(tmp_path, monkeypatch)
    for name in NAMES:
        folder = tmp_path / name
        assert verify(folder)["verdict"] == summaries[name]["verdict"]
        rows = list(csv.DictReader((folder / "results.csv").open()))
        assert len(rows) == 3 * len(plan(experiment(name), SETTINGS)["runs"]) and "seed" in rows[0]
        assert {"provenance.json", "curves.csv", "plan.json"} <= {p.name for p in folder.iterdir()}
    # the fake MAE keeps less of its gain and takes up 4× I-JEPA's distractor at every gain
    assert summaries["noisy-features"]["verdict"] == "holds"
    assert summaries["noisy-features"]["min_probe_gain"] == pytest.approx({"ijepa": 9.0, "mae": 6.0})
    assert summaries["variance-subspaces"]["verdict"] == "holds"


def test_a_tampered_summary_or_results_file_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(tmp_path, monkeypatch, ("noisy-features",))
    folder = tmp_path / "noisy-features"
    summary = json.loads((folder / "summary.json").read_text())
    summary["measured"]["controlled"]["matched_gain_points"] += 1.0
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ResultsMismatch, match=r"summary\.json.*matched_gain_points"):
        verify(folder)
    _run(tmp_path, monkeypatch, ("noisy-features",))  # rewrites both files
    header, first, *rest = (folder / "results.csv").read_text().split("\n")
    assert ",0." in first
    (folder / "results.csv").write_text("\n".join([header, first.replace(",0.", ",0.9", 1), *rest]))
    with pytest.raises(ResultsMismatch, match=r"results\.csv changed"):
        verify(folder)


def test_resummarise_rewrites_a_stale_summary_from_the_committed_rows(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """After a fix to a rule, the summary is recomputed from results.csv alone: no run folder is needed and the
    measured rows are not touched."""
    _run(tmp_path, monkeypatch, ("noisy-features",))
    folder = tmp_path / "noisy-features"
    rows = (folder / "results.csv").read_bytes()
    stale = json.loads((folder / "summary.json").read_text())
    stale["effects"]["retained_share"][0] += 0.5  # as written by an older rule
    (folder / "summary.json").write_text(json.dumps(stale))
    (tmp_path / "store").rename(tmp_path / "gone")
    summary = resummarise(folder)
    assert verify(folder) == summary
    assert summary["effects"]["retained_share"][0] == pytest.approx(stale["effects"]["retained_share"][0] - 0.5)
    assert (folder / "results.csv").read_bytes() == rows
    logged = json.loads((folder / "provenance.json").read_text())["resummarised"]
    assert len(logged) == 1
    assert logged[0]["revision"] == summary["written_at_revision"]  # the code that wrote it, not the tree after


def test_a_summary_last_written_from_uncommitted_code_is_rejected(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """In a git work tree, the code that last wrote summary.json must be committed: its own record, else
    provenance.json's last resummarised entry; earlier entries are history."""
    _run(tmp_path, monkeypatch, ("noisy-features",))
    folder = tmp_path / "noisy-features"
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary_writer(folder) == summary.pop("written_at_revision")
    (folder / "summary.json").write_text(json.dumps(summary))
    provenance = json.loads((folder / "provenance.json").read_text())
    provenance["resummarised"] = [{"revision": "abc-dirty"}]
    (folder / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(ResultsMismatch, match=r"uncommitted code \(abc-dirty\)"):
        verify(folder)
    provenance["resummarised"].append({"revision": "def"})
    (folder / "provenance.json").write_text(json.dumps(provenance))
    assert summary_writer(folder) == "def"
    verify(folder)
    (folder / "summary.json").write_text(json.dumps({**summary, "written_at_revision": "0ab-dirty"}))
    with pytest.raises(ResultsMismatch, match="resummarise"):
        verify(folder)


def test_a_standard_run_needs_its_plan_committed(tmp_path: Path) -> None:
    expected = plan(experiment("depth"), SETTINGS)
    with pytest.raises(FileNotFoundError, match="--plan"):
        check_plan(tmp_path, expected)
    write_plan("depth", tmp_path, SETTINGS)
    check_plan(tmp_path, expected)  # not a git work tree: the file alone
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(ResultsMismatch, match="not committed"):
        check_plan(tmp_path, expected)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "plan.json"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "plan"], check=True)
    check_plan(tmp_path, expected)
    with pytest.raises(ResultsMismatch, match="differs"):
        check_plan(tmp_path, plan(experiment("depth"), ExperimentSettings(mode="standard", seeds=(0, 1))))


def test_finished_runs_resume_on_a_fresh_machine_from_their_light_record(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The light files of finished runs (no checkpoints) restore a store that lost everything: nothing is trained
    or evaluated again, and the results are the same."""
    from jepalab.vision.experiments.store import LIGHT_FILES, restore_light, save_light

    first = _run(tmp_path, monkeypatch, ("depth",))
    for run in (p for p in (tmp_path / "store").iterdir() if p.is_dir()):  # the fake's files, plus eval's
        (run / "config.yaml").write_text("method: ijepa\\n")
        (run / "eval.json").write_text(json.dumps({"stand-in": True}))
    one = sorted(p.name for p in (tmp_path / "store").iterdir() if p.is_dir())[0]
    assert save_light(tmp_path / "store", tmp_path / "only", runs={one, "not-a-run"}) == [one]
    assert [p.name for p in (tmp_path / "only").iterdir()] == [one]  # only the runs asked for
    saved = save_light(tmp_path / "store", tmp_path / "record")
    assert len(saved) == 12 and {p.name for p in (tmp_path / "record" / saved[0]).iterdir()} == set(LIGHT_FILES)
    assert restore_light(tmp_path / "record", tmp_path / "fresh") == saved
    assert restore_light(tmp_path / "record", tmp_path / "fresh") == []  # already there: nothing copied twice
    assert save_light(tmp_path / "fresh", tmp_path / "fresh") == saved  # runs_dir is the record: nothing to copy
    assert restore_light(tmp_path / "fresh", tmp_path / "fresh") == []
    again = install(monkeypatch)
    run_experiments(("depth",), {"depth": tmp_path / "depth"}, SETTINGS, tmp_path / "fresh", say=lambda _: None)
    assert not again and verify(tmp_path / "depth")["verdict"] == first["depth"]["verdict"]


def test_a_plan_written_before_the_gate_setting_existed_still_matches(tmp_path: Path) -> None:
    """A setting added later reads as its default, so committed plans stay valid; another gate is another plan."""
    write_plan("depth", tmp_path, SETTINGS)
    data = json.loads((tmp_path / "plan.json").read_text())
    del data["settings"]["gate"]
    (tmp_path / "plan.json").write_text(json.dumps(data))
    check_plan(tmp_path, plan(experiment("depth"), SETTINGS))
    knn = replace(SETTINGS, gate="knn20")
    gated = plan(experiment("depth"), knn)
    assert "≥ 5 centred kNN-20 points" in gated["rule"] and "kNN-20" in gated["verdicts"]["holds"]
    assert gated["runs"] == data["runs"] and folder_name("depth", knn) == "depth-knn20-gate"
    with pytest.raises(ResultsMismatch, match="differs"):
        check_plan(tmp_path, gated)
    with pytest.raises(ValueError, match="learning-order has its own gate"):
        plan(experiment("learning-order"), knn)


def test_every_committed_results_folder_verifies_on_this_machine() -> None:
    """What `make demo` shows: each committed results folder's summary.json is what its rule recomputes from its
    results.csv here (a rule changed without --resummarise, or a read-out whose ranks depend on the CPU, fails)."""
    committed = Path(__file__).resolve().parents[3] / "results"
    folders = sorted(p.parent for p in committed.rglob("plan.json") if (p.parent / "summary.json").is_file())
    if not folders:
        pytest.skip("no committed results folder in this checkout")
    for folder in folders:
        assert verify(folder)["verdict"] in ("holds", "does not hold", "inconclusive", "not tested here"), folder


CONFIRMATORY = replace(SETTINGS, seeds=(3, 4, 5), statistics="interval", gate="noise", confirmatory=True,
                       eval=replace(SETTINGS.eval, test_images=10000))


def test_a_confirmatory_plan_registers_its_rule_and_decides_by_intervals(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    registered = plan(experiment("noisy-features"), CONFIRMATORY)
    assert registered["confirmatory"] is True and folder_name("noisy-features", CONFIRMATORY) == "noisy-features"
    assert set(registered["smallest_effect_of_interest"]) == {"retained_share", "uptake_at_matched_gain"}
    assert registered["learning_gate"]["read_out"] == "noise" and registered["learning_gate"]["reason"]
    assert "inconclusive" in registered["verdicts"] and "Holm" in registered["rule"]
    install(monkeypatch)
    summary = run_experiments(("noisy-features",), {"noisy-features": tmp_path / "nf"}, CONFIRMATORY,
                              tmp_path / "store", say=lambda _: None)["noisy-features"]
    assert summary["verdict"] == "holds" and summary["seed_list"] == [3, 4, 5] and summary["confirmatory"]
    test = summary["tests"]["uptake_at_matched_gain"]
    assert test["ci95"][0] < test["mean"] < test["ci95"][1] and test["p_holm"] >= test["p_one_sided"]
    assert summary["measured"]["first_segment_reads"] == [False, False, False]
    assert verify(tmp_path / "nf")["verdict"] == "holds"


def test_a_reanalysis_is_labelled_exploratory_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jepalab.vision.experiments.runner import reanalyse

    _run(tmp_path, monkeypatch, ("noisy-features",))
    folder = tmp_path / "noisy-features"
    write_plan("noisy-features", folder, SETTINGS)
    found = reanalyse(folder)
    assert found["label"].startswith("exploratory (seeds 0, 1, 2") and "tests" in found
    assert found["learning_gate"]["read_out"] == "noise"  # 1,000 test images: noise ≈ 2 points, gains 6–9
    assert verify(folder)["verdict"] == "holds"  # summary.json is the registered verdict, untouched
    saved = json.loads((folder / "reanalysis.json").read_text())
    saved["verdict"] = "holds" if saved["verdict"] != "holds" else "inconclusive"
    (folder / "reanalysis.json").write_text(json.dumps(saved))
    with pytest.raises(ResultsMismatch, match=r"reanalysis\.json disagrees"):
        verify(folder)


def test_cheapest_first_trains_the_cheaper_method_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jepalab.vision.experiments.launchers import LaunchOptions, launch_options

    trained = install(monkeypatch)
    run_experiments(("variance-subspaces",), {"variance-subspaces": tmp_path / "vs"}, SETTINGS, tmp_path / "store",
                    say=lambda _: None, launch=LaunchOptions(order="cheapest-first"))
    order = [name.split("-")[0] for name in trained]  # in training order (one job at a time)
    assert order == ["mae"] * 3 + ["ijepa"] * 3  # an MAE step costs about half an I-JEPA step
    with pytest.raises(ValueError, match="order"):
        launch_options({"order": "random"})
