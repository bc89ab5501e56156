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
    said = {c["key"]: c["headline"] for c in report["claims"]}
    assert "failed: RuntimeError: dataset missing" in said["T2"]
    assert "--full" in said["T3"]
    assert (tmp_path / "parts" / "fake-broken" / "traceback.txt").read_text().count("RuntimeError") >= 1
    claims = json.loads((tmp_path / "claims.json").read_text())["claims"]
    assert [c["key"] for c in claims] == ["T1", "T2", "T3", "C6", "C7", "C8"]
    env = json.loads((tmp_path / "environment.json").read_text())
    assert set(env["part_wall_time_s"]) == {"fake-ok", "fake-broken", "fake-full", "theory-closed-forms"}
    markdown = (tmp_path / "report.md").read_text()
    assert "| T2 | needs data |" in markdown
    assert "**6 claims**: 4 holds, 2 not tested here" in markdown  # the summary strip: counts, one line per group
    assert "- **A part that fails**: not tested here: T2\n" in markdown
    assert "- **Exact theory**: holds: C6, C7, C8\n" in markdown


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
    formula = r"$\varepsilon^{-(2L-1)/L}$"  # C8's, one LaTeX source: kept in report.md, MathML in the page
    assert formula in (tmp_path / "report.md").read_text() and formula not in page
    assert "<msup><mi>&#x003B5;</mi><mrow><mo>&#x02212;</mo>" in page


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
const report = (name, value) => parent.postMessage(JSON.stringify([name, value]), "*");
window.addEventListener("error", e => report("data-error", String(e.message || e.type)), true);
window.addEventListener("load", () => {
  const box = e => e.getBoundingClientRect();
  const imgs = Array.from(document.images);
  const shown = i => i.complete && i.naturalWidth > 0 && box(i).width > 0 && box(i).height > 0;
  const rows = {};
  document.querySelectorAll("table.claims tr[id^='claim-']").forEach(tr => {
    const img = tr.querySelector("td.fig img");
    rows[tr.id.slice(6)] = img ? (shown(img) ? "shown" : "broken") : "none";
  });
  const badges = {};
  document.querySelectorAll("td.verdict .v").forEach(b => {
    badges[b.textContent] = getComputedStyle(b).backgroundColor;
  });
  const probe = {width: window.innerWidth, client: document.documentElement.clientWidth,
                 scroll: document.documentElement.scrollWidth,
                 body: document.body.scrollWidth, rows, badges,
                 images: imgs.length, broken: imgs.filter(i => !shown(i)).length,
                 maths: Array.from(document.querySelectorAll("math")).map(m => [box(m).width, box(m).height]),
                 carets: (document.body.innerText.match(/\\^/g) || []).length,
                 dollars: (document.body.innerText.match(/\\$/g) || []).length};
  const thumb = document.querySelector("td.fig a");
  location.hash = thumb.getAttribute("href");  // as a click on the thumbnail: its figure becomes :target
  const opened = document.querySelector(thumb.getAttribute("href"));
  probe.opened = {position: getComputedStyle(opened).position, width: box(opened).width,
                  shown: box(opened.querySelector("img")).width};
  report("data-probe", JSON.stringify(probe));
});
</script>"""
FRAME = """<!doctype html><html><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:900px;border:0"></iframe><script>
window.addEventListener("message", e => {{
  const [name, value] = JSON.parse(e.data);
  document.body.setAttribute(name, value);
}});
</script></body></html>"""
"""A window exactly ``width`` px wide around the probed page (headless Chromium's windows are at least 500 px)."""


class _Probe(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.found = {k: v for k, v in attrs if k in ("data-probe", "data-error")}


def browser_probe(page: Path, width: int, profile: Path) -> dict:
    """Open ``page`` in headless Chromium ``width`` px wide and return what :data:`PROBE` measured there: the
    layout widths, each claim row's thumbnail, verdict colours, images, MathML boxes, carets and dollars in the
    visible text, and the first thumbnail's figure opened."""
    probe, frame = page.with_name(f"probe-{width}.html"), page.with_name(f"frame-{width}.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    frame.write_text(FRAME.format(src=probe.name, width=width))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                          f"--window-size={width + 100},1000", "--virtual-time-budget=5000", "--dump-dom",
                          frame.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120)
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "error" in line.lower()]
    assert not console_errors, console_errors
    parser = _Probe()
    parser.feed(dom.stdout)
    assert "data-error" not in parser.found, parser.found
    return json.loads(parser.found["data-probe"])


def _verdicts_part(ctx):
    """Findings with the three verdicts the theory parts never give, a wide figure and an unbreakable token."""
    figure = ctx.out_dir / "wide.png"
    ramp = np.linspace(0, 255, 1200, dtype=np.uint8)
    Image.fromarray(np.tile(ramp, (300, 1))).save(figure)
    token = "results/confirmatory/noisy-features/store/" + "0123456789abcdef" * 8
    return PartOutput(findings=[
        Finding("V1", f"measured in {token}", "does not hold", r"rule: $\sum_{i} x_i^{2} > 1$", ctx.relative(figure),
                headline="the interval lies below the smallest effect of interest", details=[f"see {token}"]),
        Finding("V2", "measured", "inconclusive", "rule", ctx.relative(figure)),
        Finding("V3", "-", "not tested here", headline="learning gate not met")],
        figures=[(ctx.relative(figure), "a wide figure")])


VERDICT_PART = Part("verdicts", "Every verdict", tuple(ClaimSpec(f"V{i}", f"claim {i} on $x^{{{i}}}$", "derived here",
                                                                 "test", "n/a") for i in (1, 2, 3)),
                    _verdicts_part, {"quick": 1.0, "full": 1.0})


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed: `make browser` as root installs "
                                             "Debian's 'chromium'")
def test_report_renders_in_a_real_browser(tmp_path, monkeypatch):
    """The page as Chromium lays it out: formulas are MathML with a size, every claim with a figure shows its
    thumbnail (which opens the full figure), the four verdicts look different, no caret or $ is left in the text,
    and at 400 px the page does not scroll sideways."""
    monkeypatch.setattr(reproduce_module, "all_parts", lambda: (VERDICT_PART, THEORY_PARTS[0], THEORY_PARTS[2]))
    report_dir = tmp_path / "report"
    report = reproduce(report_dir, mode="quick", progress=False)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600",
                    f"--screenshot={shot}", (report_dir / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20, "the screenshot is blank"
    wide = browser_probe(report_dir / "report.html", 1280, tmp_path / "profile")
    with_figure = {c["key"] for c in report["claims"] if c["figure"]}
    assert with_figure == {"V1", "V2", "C1", "C2", "C3"}
    assert wide["rows"] == {c["key"]: "shown" if c["key"] in with_figure else "none" for c in report["claims"]}
    assert wide["broken"] == 0 and wide["images"] == len(with_figure) + 2  # + the two figures of the parts
    assert len(wide["maths"]) >= 12 and all(w > 5 and h > 5 for w, h in wide["maths"]), wide["maths"]
    assert wide["carets"] == 0 and wide["dollars"] == 0
    assert len(set(wide["badges"].values())) == 4, wide["badges"]
    assert wide["opened"]["position"] == "fixed" and wide["opened"]["width"] >= 0.9 * wide["width"]
    assert wide["opened"]["shown"] > 400  # the full figure, not the 200-px thumbnail
    narrow = browser_probe(report_dir / "report.html", 400, tmp_path / "profile")
    assert narrow["width"] == 400 and narrow["scroll"] <= narrow["client"] and narrow["body"] <= narrow["client"]
    assert narrow["broken"] == 0 and all(w > 5 and h > 5 for w, h in narrow["maths"])


def test_demo_writes_the_quick_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce_module, "all_parts", lambda: (THEORY_PARTS[2],))
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()
    assert "C8  holds" in capsys.readouterr().out


def test_paths_in_findings_are_relative(tmp_path, fake_parts):
    report = reproduce(tmp_path, mode="quick", progress=False, only=["fake-ok"])
    config = report["claims"][0]["config"]
    assert not Path(config).is_absolute() and (tmp_path / config).is_file()
