"""jepalab reproduce: claims table, self-contained HTML, resolvable links, failures kept, resume, browser render."""

import functools
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jepalab.report.reproduce as reproduce_module
from jepalab.cli import main
from jepalab.report.claims import ClaimSpec, Finding, Part, PartOutput, verdict
from jepalab.report.parts_theory import THEORY_PARTS
from jepalab.report.reproduce import reproduce

CALLS: list[str] = []


def _ok_part(ctx, key="T1"):
    CALLS.append("ok")
    (ctx.out_dir / "config.json").write_text("{}")
    return PartOutput(findings=[Finding(key, "measured 1.0", verdict(True), "rule", None,
                                        ctx.relative(ctx.out_dir / "config.json"))])


def _failing_part(ctx):
    raise RuntimeError("dataset missing: install dataset-fashion-mnist")


FAKE_PARTS = (
    Part("fake-ok", "A part that works", (ClaimSpec("T1", "works", "derived here", "test", "n/a"),), _ok_part,
         {"quick": 1.0, "full": 1.0}),
    Part("fake-broken", "A part that fails", (ClaimSpec("T2", "needs data", "beyond the paper", "test", "n/a"),),
         _failing_part, {"quick": 1.0, "full": 1.0}),
    Part("fake-full", "A part for --full only", (ClaimSpec("T3", "needs a GPU", "paper", "test", "n/a"),),
         functools.partial(_ok_part, key="T3"), {"full": 100.0}, modes=("full",), uses_reuse=True),
    THEORY_PARTS[2],
)


@pytest.fixture
def fake_parts(monkeypatch):
    monkeypatch.setattr(reproduce_module, "all_parts", lambda: FAKE_PARTS)
    CALLS.clear()


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.ids, self.images = [], set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])


def test_report_keeps_every_claim_and_survives_a_failing_part(tmp_path, fake_parts):
    report = reproduce(tmp_path, mode="quick", progress=False)
    verdicts = {c["key"]: c["verdict"] for c in report["claims"]}
    assert verdicts["T1"] == "holds"
    assert verdicts["T2"] == "not tested here" and verdicts["T3"] == "not tested here"
    assert {"C6", "C7", "C8"} <= set(verdicts)
    reasons = {c["key"]: c["reason"] for c in report["claims"]}
    assert "failed: RuntimeError: dataset missing" in reasons["T2"]
    assert "--full" in reasons["T3"]
    assert (tmp_path / "parts" / "fake-broken" / "traceback.txt").read_text().count("RuntimeError") >= 1
    claims = json.loads((tmp_path / "claims.json").read_text())["claims"]
    assert [c["key"] for c in claims] == ["T1", "T2", "T3", "C6", "C7", "C8"]
    env = json.loads((tmp_path / "environment.json").read_text())
    assert set(env["part_wall_time_s"]) == {"fake-ok", "fake-broken", "fake-full", "theory-closed-forms"}
    assert "| T2 | needs data |" in (tmp_path / "report.md").read_text()


def test_html_is_self_contained_and_every_link_resolves(tmp_path, fake_parts):
    reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok", "theory-closed-forms"])
    page = (tmp_path / "report.html").read_text()
    parser = _Links()
    parser.feed(page)
    assert "<table>" in page and 'id="claims"' in page
    for href in parser.hrefs:
        if href.startswith("#"):
            assert href[1:] in parser.ids, href
        else:
            assert not re.match(r"^[a-z]+://", href), f"external link {href}"
            assert (tmp_path / href).is_file(), href
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)


def test_resume_skips_finished_parts_and_strict_exit_code(tmp_path, fake_parts):
    reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok"])
    assert CALLS == ["ok"]
    reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok"], resume=True)
    assert CALLS == ["ok"]
    reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok"])
    assert CALLS == ["ok", "ok"]
    assert main(["reproduce", "--out", str(tmp_path / "s"), "--parts", "fake-broken"]) == 0
    assert main(["reproduce", "--out", str(tmp_path / "s"), "--parts", "fake-broken", "--strict"]) == 1
    assert main(["reproduce", "--out", str(tmp_path / "s"), "--parts", "nope"]) == 2


def test_reused_runs_enable_full_only_parts(tmp_path, fake_parts):
    run = tmp_path / "pretrain-run"
    run.mkdir()
    report = reproduce(tmp_path / "r", mode="quick", reuse=[run], progress=False, only=["fake-full"])
    assert report["claims"][0]["verdict"] == "holds"
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        reproduce(tmp_path / "r", mode="quick", reuse=[tmp_path / "missing"], progress=False)


def test_theory_parts_verdicts(tmp_path):
    report = reproduce(tmp_path, mode="quick", progress=False, only=[p.name for p in THEORY_PARTS])
    verdicts = {c["key"]: c["verdict"] for c in report["claims"]}
    assert verdicts == dict.fromkeys(["C1", "C2", "C3", "C4", "C5", "A2", "C6", "C7", "C8"], "holds")
    c4 = next(c for c in report["claims"] if c["key"] == "C4")
    assert c4["numbers"]["ratio"]["5"] == pytest.approx(2.1321, abs=1e-4)  # JSON keys, fresh or resumed
    assert (tmp_path / c4["figure"]).is_file() and (tmp_path / c4["config"]).is_file()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE = """<script>
window.addEventListener("error", e => document.body.setAttribute("data-error", String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute("data-probe", `images=${imgs.length} broken=${broken}`);
});
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed: `make browser` as root installs "
                                             "Debian's 'chromium'")
def test_report_renders_in_a_real_browser(tmp_path):
    report_dir = tmp_path / "report"
    reproduce(report_dir, mode="quick", progress=False, only=["theory-figure2", "theory-closed-forms"])
    profile = [f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, "--window-size=1280,1600", f"--screenshot={shot}",
                    (report_dir / "report.html").as_uri()], check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is blank"
    probe = report_dir / "probe.html"
    probe.write_text((report_dir / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--enable-logging=stderr", "--virtual-time-budget=5000",
                          "--dump-dom", probe.as_uri()], check=True, capture_output=True, text=True, timeout=120)
    assert 'data-probe="images=1 broken=0"' in dom.stdout
    assert 'data-error="' not in dom.stdout
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "error" in line.lower()]
    assert not console_errors, console_errors


def test_demo_writes_the_quick_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce_module, "all_parts", lambda: (THEORY_PARTS[2],))
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()
    assert "C8  holds" in capsys.readouterr().out


def test_paths_in_findings_are_relative(tmp_path, fake_parts):
    report = reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok"])
    config = report["claims"][0]["config"]
    assert not Path(config).is_absolute() and (tmp_path / config).is_file()
