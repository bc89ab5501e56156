"""The real-image report part: committed results folders are verified and shown with their provenance; a tampered
one fails the part naming the file; reused quick folders still work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from jepalab.report.claims import PartContext
from jepalab.report.parts_images import run_images
from jepalab.report.reproduce import reproduce
from jepalab.rundir import environment
from jepalab.vision.experiments import ExperimentSettings, run_experiments

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vision" / "experiments"))
from fake_runs import install

NAMES = ("noisy-features", "variance-subspaces", "depth")


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A results/ folder of the three experiments at toy scale (fake training, 3 seeds)."""
    install(monkeypatch)
    settings = ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1), depths=(1, 4))
    root = tmp_path / "results"
    run_experiments(NAMES, {n: root / n for n in NAMES}, settings, tmp_path / "store", say=lambda _: None)
    return root


def test_committed_results_are_shown_with_provenance(results: Path, tmp_path: Path) -> None:
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=results)
    claims = {c["key"]: c for c in report["claims"]}
    assert {claims[k]["verdict"] for k in ("R1", "R2")} == {"holds"}
    r1 = claims["R1"]
    assert r1["measured"].startswith("measured on ") and "3 seed(s), standard scale" in r1["measured"]
    numbers = r1["numbers"]
    assert numbers["seeds"] == 3 and numbers["revision"] == "abc" and numbers["device"]
    measuring = environment()["git_revision"]  # the code that ran the experiment command, when in a git tree
    assert numbers.get("read_at") == (measuring[:12] + ("-dirty" if measuring.endswith("-dirty") else "")
                                      if measuring else None)
    assert numbers["min_probe_gain"] == pytest.approx({"ijepa": 9.0, "mae": 6.0})
    assert "--standard" in numbers["rerun"] and len(numbers["effects"]["retained_share"]) == 3
    (part,) = report["parts"]
    forest, caption = part["output"]["figures"][0]
    assert forest == "parts/images/intervals.png" and (tmp_path / "report" / forest).is_file()
    assert caption.lower().startswith("intervals of the real-image effects")
    strip = (tmp_path / "report" / "report.html").read_text().split('id="glance"')[1].split("</div>")[0]
    assert "<small>(exploratory: R1, R2, R3)</small>" in strip
    assert '<a href="#fig-parts-images-intervals-png">the effects with their intervals</a>' in strip


def test_a_tampered_results_folder_fails_the_part_naming_the_file(results: Path, tmp_path: Path) -> None:
    summary_path = results / "depth" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["verdict"] = "holds" if summary["verdict"] != "holds" else "does not hold"
    summary_path.write_text(json.dumps(summary))
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=results)
    (part,) = report["parts"]
    assert part["status"] == "failed" and "depth/summary.json" in part["error"]
    assert {c["verdict"] for c in report["claims"]} == {"not tested here"}


def test_a_further_pre_registered_measurement_is_followed_then_shown_when_it_trained_more(
        results: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """results/<variant>/<name>: while only its plan is committed, the claim keeps the measured verdict and says how
    many planned runs finished and the command that resumes them; once measured with more epochs, it is the one
    shown, the other named beside it."""
    from jepalab.vision.experiments import write_plan

    longer = ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1), depths=(1, 4), epochs=12)
    write_plan("noisy-features", results / "epochs-12" / "noisy-features", longer)
    report = reproduce(tmp_path / "r1", mode="quick", progress=False, only=["images"], results=results)
    r1 = next(c for c in report["claims"] if c["key"] == "R1")
    assert r1["verdict"] == "holds" and "(10 epochs)" in r1["measured"]
    details = " ".join(r1["details"])
    assert "epochs-12/noisy-features/plan.json (12 epochs) is pre-registered, 0 of its 12 runs finished" in details
    assert r1["reason"].startswith("held = ") and not r1["headline"]  # the rule; decided, so no cause to add
    command = details.split("`")[-2]
    assert command.startswith("jepalab experiment noisy-features --standard ")  # the one experiment planned there
    assert {"depths=[1,4]", "epochs=12", "evaluate=last"} <= set(command.split())
    assert command.endswith("--out results/epochs-12 --jobs 2")
    install(monkeypatch)
    run_experiments(["noisy-features"], {"noisy-features": results / "epochs-12" / "noisy-features"}, longer,
                    tmp_path / "store", say=lambda _: None)
    report = reproduce(tmp_path / "r2", mode="quick", progress=False, only=["images"], results=results)
    r1 = next(c for c in report["claims"] if c["key"] == "R1")
    assert "(12 epochs)" in r1["measured"] and "epochs=12" in r1["numbers"]["rerun"].split()
    assert r1["numbers"]["rerun"].endswith("--out results/epochs-12 --jobs 2")
    assert f"{results / 'noisy-features'} (10 epochs, 3 seed(s)): holds" in " ".join(r1["details"])


def test_without_results_the_claims_are_not_tested_and_say_how_to_run(tmp_path: Path) -> None:
    output = run_images(PartContext(tmp_path / "r" / "parts" / "images", tmp_path / "r", "quick", (), 0, None))
    assert {f.verdict for f in output.findings} == {"not tested here"}
    assert all("--standard" in f.reason for f in output.findings)


def test_report_part_reads_reused_experiments(tmp_path: Path) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    summary = {"experiment": "variance-subspaces", "mode": "quick", "seeds": 1, "held": True, "rule": "Δ > 0",
               "checks": {"delta": "effect +0.1 > 0"}, "measured": {"effect": 0.1}, "claim": "c"}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "variance_subspaces.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    report = tmp_path / "report"
    output = run_images(PartContext(report / "parts" / "images", report, "quick", (folder,), 0, None))
    verdicts = {f.key: f.verdict for f in output.findings}
    assert verdicts == {"R1": "not tested here", "R2": "holds", "R3": "not tested here", "R4": "not tested here"}
    r2 = next(f for f in output.findings if f.key == "R2")
    assert r2.figure == "parts/images/variance-subspaces/variance_subspaces.png"  # copied inside the report
    assert (report / r2.figure).is_file()


def _context_size_folder(root: Path, held: bool) -> Path:
    folder = root / "ctx"
    folder.mkdir(parents=True)
    summary = {"experiment": "context-size", "mode": "quick", "seeds": 1, "held": held, "rule": "range ≤ 3 points",
               "checks": {"probe_range": "EC-IJEPA 1.00 points ≤ 3"}, "measured": {"threshold_points": 3.0},
               "claim": "c"}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "context_size.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def test_the_optional_ec_ijepa_claim_is_shown_only_with_its_results(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"experiment": "depth"}))
    without = reproduce(tmp_path / "r1", mode="quick", reuse=[other], progress=False, results=None,
                        only=["images"])
    assert all(c["key"] != "E1" for c in without["claims"])
    folder = _context_size_folder(tmp_path, held=False)
    shown = reproduce(tmp_path / "r2", mode="quick", reuse=[folder], progress=False, only=["beyond"], results=None)
    (claim,) = [c for c in shown["claims"] if c["key"] == "E1"]
    assert claim["verdict"] == "does not hold" and "EC-IJEPA, our reading" in claim["provenance"]
    assert claim["figure"] == "parts/beyond/context-size/context_size.png"
    assert (tmp_path / "r2" / claim["figure"]).is_file()
    page = (tmp_path / "r2" / "report.html").read_text()  # a figure file that is no image: linked, not shown
    assert '<a href="parts/beyond/context-size/context_size.png">figure</a> (not an image' in page


def test_a_registered_toy_experiment_appears_in_help_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The registries are the only lists: a new experiment is listed by `jepalab experiment --help` and its claim
    gets a row in the report, with no other file edited."""
    from jepalab.cli import main
    from jepalab.vision.experiments import registry
    from jepalab.vision.experiments.noisy_features import NoisyFeatures

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry.available_experiments()))

    @registry.register_experiment
    class Toy(NoisyFeatures):
        """A toy copy of noisy-features."""

        name, claim_key = "toy-noise", "T1"
        report_claim: ClassVar[dict[str, str] | None] = {"statement": "toy", "source": "beyond the paper",
                                                         "provenance": "a test", "paper_says": "nothing"}

    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    shown = capsys.readouterr().out
    assert "toy-noise: A toy copy of noisy-features." in shown
    assert "  gate: read-out of the learning gate" in shown  # the settings
    assert "(one of probe, knn20, noise)" in " ".join(shown.split())
    install(monkeypatch)
    settings = ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1))
    run_experiments(["toy-noise"], {"toy-noise": tmp_path / "results" / "toy-noise"}, settings, tmp_path / "store",
                    say=lambda _: None)
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"],
                       results=tmp_path / "results")
    toy = next(c for c in report["claims"] if c["key"] == "T1")
    assert toy["verdict"] == "holds" and toy["statement"] == "toy"


def _little_probe_much_knn(cfg: object, progress: float) -> dict[str, float]:
    """Encoders whose probe rises 3 points (under the gate) while their kNN-20 rises 15 and RankMe doubles."""
    return {"probe": 0.6 + 0.03 * progress, "distractor_r2": 0.3, "cca_delta": -0.5, "knn20": 0.5 + 0.15 * progress,
            "rankme": 4.0 + 4.0 * progress, "top_probe": 0.5, "bottom_probe": 0.3, "cca_top": 0.9, "cca_bottom": 0.4}


def test_a_gated_claim_says_what_other_read_outs_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, _little_probe_much_knn)
    settings = ExperimentSettings(mode="standard", seeds=(0, 1, 2))
    root = tmp_path / "results"
    run_experiments(["variance-subspaces"], {"variance-subspaces": root / "variance-subspaces"}, settings,
                    tmp_path / "store", say=lambda _: None)
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=root)
    r2 = next(c for c in report["claims"] if c["key"] == "R2")
    assert r2["verdict"] == "not tested here"
    learning = r2["numbers"]["learning"]
    assert learning["ijepa"]["probe_points"] == pytest.approx(3.0)
    assert learning["mae"]["knn20_points"] == pytest.approx(15.0)
    assert learning["mae"]["rankme_ratio"] == pytest.approx(2.0)
    assert r2["headline"].startswith("learning gate not met: ijepa gained +3.0 probe points")
    assert "mae kNN-20 +15.0 points, centred RankMe ×2.00" in r2["details"][0]


def test_the_same_runs_under_a_kNN_learning_gate_are_shown_beside_the_probe_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """gate=knn20 decides the same runs in ``<name>-knn20-gate``: shown (equal training, decided), the probe-gated
    folder named with its reason; claims.json keeps the label-probe gain and adds the gate's."""
    install(monkeypatch, _little_probe_much_knn)
    root = tmp_path / "results"
    for gate in ("probe", "knn20"):
        settings = ExperimentSettings(mode="standard", seeds=(0, 1, 2), gate=gate)
        folder = root / ("variance-subspaces" if gate == "probe" else "variance-subspaces-knn20-gate")
        run_experiments(["variance-subspaces"], {"variance-subspaces": folder}, settings, tmp_path / "store",
                        say=lambda _: None)
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=root)
    r2 = next(c for c in report["claims"] if c["key"] == "R2")
    assert r2["verdict"] != "not tested here" and "centred kNN-20 learning gate" in r2["measured"]
    assert r2["numbers"]["min_probe_gain"]["ijepa"] == pytest.approx(3.0)
    assert r2["numbers"]["learning_gate"]["read_out"] == "knn20"
    assert r2["numbers"]["learning_gate"]["min_gain"]["mae"] == pytest.approx(15.0)
    assert "gate=knn20" in r2["numbers"]["rerun"].split()
    assert "variance-subspaces (10 epochs, 3 seed(s)): not tested here (learning gate not met" in " ".join(
        r2["details"])


def test_a_confirmatory_measurement_is_headlined_with_its_intervals(results: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from jepalab.vision.experiments.runner import reanalyse

    base = ExperimentSettings(mode="standard", seeds=(0, 1, 2), strengths=(0.0, 0.1), depths=(1, 4))
    confirmatory = replace(base, seeds=(3, 4, 5), statistics="interval", gate="noise", confirmatory=True,
                           eval=replace(base.eval, test_images=10000))
    folder = results / "confirmatory" / "noisy-features"
    run_experiments(("noisy-features",), {"noisy-features": folder}, confirmatory, tmp_path / "store",
                    say=lambda _: None)
    from jepalab.vision.experiments import write_plan

    write_plan("noisy-features", results / "noisy-features", base)
    reanalyse(results / "noisy-features")
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=results)
    r1 = {c["key"]: c for c in report["claims"]}["R1"]
    numbers = r1["numbers"]
    assert numbers["confirmatory"] is True and numbers["seed_list"] == [3, 4, 5]
    assert r1["statement"].startswith("When the distractor is added, I-JEPA keeps a larger share")  # what is tested
    assert "takes up the distractor" in r1["general_statement"]
    assert numbers["folder"].endswith("confirmatory/noisy-features")
    test = numbers["tests"]["uptake_at_matched_gain"]
    assert len(test["effects"]) == 3 and test["ci95"][0] <= test["mean"] <= test["ci95"][1]
    assert set(numbers["smallest_effect_of_interest"]) == {"retained_share", "uptake_at_matched_gain"}
    assert numbers["learning_gate"]["read_out"] == "noise"
    assert "(confirmatory: R1; exploratory: R2, R3)" in (tmp_path / "report" / "report.html").read_text()
    details = " ".join({c["key"]: c for c in report["claims"]}["R1"]["details"])
    assert "under the confirmatory rule, exploratory (seeds 0, 1, 2" in details  # the earlier measurement, labelled
    assert numbers["registration"] == {"checked": False, "reason": "not in a git work tree"}
    assert "registration order not checked by git here (not in a git work tree)" in details


def test_the_forest_reads_the_numbers_each_verdict_is_computed_from(tmp_path: Path) -> None:
    """A confirmatory measurement shows its own 95 % intervals; one decided by the shared test shows mean ± sd and,
    where the same runs were reanalysed with finite effects, that interval labelled exploratory; a reanalysis whose
    effects are undefined adds nothing; a smallest effect of interest comes from the numbers, else the plan."""
    from jepalab.report.results_figure import CONFIRMATORY, EXPLORATORY, effect_rows, forest_figure

    test = {"effects": [0.1, 0.3, 0.2], "mean": 0.2, "ci95": [-0.05, 0.45], "p_one_sided": 0.04, "p_holm": 0.08}
    confirmatory = {"verdict": "inconclusive", "confirmatory": True, "tests": {"gap": test},
                    "smallest_effect_of_interest": {"gap": 0.05}, "effects": {"gap": [9.0, 9.0, 9.0]}}
    (row,) = effect_rows("R9", confirmatory, None, {"gap": 0.5})
    assert (row.ci, row.ci_kind, row.spread, row.smallest) == ((-0.05, 0.45), CONFIRMATORY, None, 0.05)
    assert row.effects == (0.1, 0.3, 0.2) and row.reading == "confirmatory 95 % CI: inconclusive"
    shared = {"held": True, "effects": {"gap": [1.0, 2.0, 3.0], "other": [0.5, 0.5, 0.5]}}
    reanalysis = {"verdict": "holds", "tests": {"gap": test, "other": {**test, "effects": ["nan"] * 3}},
                  "smallest_effect_of_interest": {"gap": 0.05, "other": 0.05}}
    gap, other = effect_rows("R9", shared, reanalysis, {})
    assert gap.mean == pytest.approx(2.0) and gap.spread == pytest.approx((1.0, 3.0)) and gap.effects == (1, 2, 3)
    assert gap.ci == (-0.05, 0.45) and gap.ci_kind == EXPLORATORY
    assert gap.reading == "mean ± sd: holds · exploratory 95 % CI: holds"
    assert other.ci is None and other.spread == pytest.approx((0.5, 0.5)) and other.reading == "mean ± sd: holds"
    (alone,) = effect_rows("R9", {"verdict": "does not hold", "effects": {"gap": [0.1, -0.1]}}, None, {"gap": 0.02})
    assert alone.smallest == 0.02 and alone.ci is None and alone.mean == pytest.approx(0.0)
    figure = forest_figure([row, gap, other, alone], tmp_path / "forest")
    from PIL import Image

    with Image.open(figure) as image:
        assert image.height > 4 * 0.66 * 90  # one row per test


def test_a_measurement_shows_the_reanalysis_of_its_own_runs_once(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The kNN-gated folder shown for R2 has no reanalysis.json, but the probe-gated folder of the identical
    results.csv does: R2 carries it as its own (claims.json, its details, the forest) and does not repeat it."""
    from jepalab.vision.experiments.runner import reanalyse

    install(monkeypatch, _little_probe_much_knn)
    root = tmp_path / "results"
    for gate in ("probe", "knn20"):
        settings = ExperimentSettings(mode="standard", seeds=(0, 1, 2), gate=gate)
        folder = root / ("variance-subspaces" if gate == "probe" else "variance-subspaces-knn20-gate")
        run_experiments(["variance-subspaces"], {"variance-subspaces": folder}, settings, tmp_path / "store",
                        say=lambda _: None)
    reanalyse(root / "variance-subspaces")
    report = reproduce(tmp_path / "report", mode="quick", progress=False, only=["images"], results=root)
    r2 = next(c for c in report["claims"] if c["key"] == "R2")
    assert r2["numbers"]["folder"].endswith("variance-subspaces-knn20-gate")
    assert r2["numbers"]["exploratory_reanalysis"]["label"].startswith("exploratory (seeds 0, 1, 2")
    assert sum("under the confirmatory rule" in d for d in r2["details"]) == 1


def test_the_rerun_command_holds_every_planned_setting(tmp_path: Path) -> None:
    """A confirmatory plan's command re-creates the plan exactly, the evaluation's settings included, and runs only
    the experiments planned beside it."""
    import shlex
    from dataclasses import replace

    from jepalab.config import config_to_dict, from_dict, merge_dicts, parse_overrides
    from jepalab.report.parts_images import rerun
    from jepalab.vision.experiments import experiment
    from jepalab.vision.experiments.results import plan

    base = ExperimentSettings.for_mode("standard")
    settings = replace(base, seeds=(3, 4, 5), epochs=24, gate="noise", statistics="interval", confirmatory=True,
                       eval=replace(base.eval, precision="run", subspace="clean", random_init="run"))
    planned = plan(experiment("variance-subspaces"), settings)
    (tmp_path / "variance-subspaces").mkdir()
    (tmp_path / "variance-subspaces" / "plan.json").write_text(json.dumps(planned))
    words = shlex.split(rerun("variance-subspaces", planned, "results/again", tmp_path))
    assert words[:4] == ["jepalab", "experiment", "variance-subspaces", "--standard"]
    assert {"eval.precision=run", "eval.subspace=clean", "eval.random_init=run"} <= set(words)
    again = from_dict(ExperimentSettings, merge_dicts(config_to_dict(base),
                                                      parse_overrides([w for w in words if "=" in w])))
    assert plan(experiment("variance-subspaces"), again) == planned


def test_a_measurement_trained_on_two_cpu_models_names_both(tmp_path: Path) -> None:
    from jepalab.report.parts_images import provenance_line

    sessions = [{"cpu": "AMD EPYC", "wall_s": 1.0}, {"cpu": "Intel Xeon", "wall_s": 1.0}]
    facts = {"device": {"kind": "cpu", "name": "AMD EPYC"}, "git_revisions": ["a" * 40],
             "runs": [{"run": "mae-1", "train_sessions": sessions}, {"run": "mae-2"}]}
    (tmp_path / "provenance.json").write_text(json.dumps(facts))
    line, numbers = provenance_line(tmp_path, {"seeds": 2, "mode": "standard"})
    assert line.startswith("measured on AMD EPYC and Intel Xeon at aaaaaaaaaaaa, 2 seed(s)")
    assert numbers["device"] == "AMD EPYC and Intel Xeon"
