"""Render a ``jepalab reproduce`` report as one self-contained HTML page and as Markdown."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Any

from jepalab.report.maths import html_with_math as rich
from jepalab.report.results_figure import FOREST_ALT

SETTING = [
    r"Littwin et al. (NeurIPS 2024) study deep linear networks trained by gradient flow: a depth-$L$ linear encoder "
    r"$\bar W = W^{L} \cdots W^{1}$ and one linear predictor $V$. JEPA predicts the stop-gradient latent of the target "
    r"view, $\tfrac{1}{2}\,\mathbb{E}\lVert V \bar W x - \mathrm{SG}(\bar W y) \rVert^{2}$; MAE reconstructs the "
    r"target in input space, $\tfrac{1}{2}\,\mathbb{E}\lVert V \bar W x - y \rVert^{2}$.",
    r"With covariances diagonal in one basis, each feature $i$ has a cross-covariance "
    r"$\lambda_i = (\Sigma_{yx})_{ii}$ and a regression coefficient $\rho_i = \lambda_i / (\Sigma_{xx})_{ii}$. From a "
    r"small balanced initialisation (encoder amplitude $\bar w(0) = \varepsilon$) both objectives learn features one "
    r"after another; the order is decided by the critical times.",
    "The paper's claim: both objectives are greedy in λ, but only JEPA is also greedy in ρ — more so the deeper the "
    "encoder — so JEPA prefers predictive, low-noise features while MAE spends capacity on high-variance ones.",
    r"jepalab solves the per-feature dynamics exactly (closed forms, no ODE solver), trains the full-matrix networks, "
    r"and checks each claim below with a rule written in code. Time is gradient-flow time $t$ (learning rate × steps) "
    r"unless marked $\tau = L\,t$ (the paper's units). Where the paper's own parameters were not recovered, jepalab's "
    r"choices are stated in each part's config.",
]
VERDICT_CLASS = {"holds": "holds", "does not hold": "fails", "inconclusive": "inconclusive",
                 "not tested here": "untested"}
THUMB_PX = 200
"""Display width of a claim's thumbnail (drawn at twice that for sharp screens)."""

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1280px;margin:1.5em auto;padding:0 1em;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.meta{color:#555;font-size:.9em}table{border-collapse:collapse;width:100%;font-size:.86em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.35em .5em;vertical-align:top;text-align:left;overflow-wrap:anywhere}
th{background:#f4f4f6}.wide{overflow-x:auto;max-width:100%}
.v{display:inline-block;padding:.05em .6em;border-radius:1em;font-weight:600;white-space:nowrap;border:1px solid}
.v-holds{background:#e3f6e5;color:#116b23;border-color:#9fd8a8}.v-fails{background:#fde8e8;color:#a11;border-color:#f0a8a8}
.v-inconclusive{background:#fff3d6;color:#7a4d00;border-color:#e8c36a}
.v-untested{background:#f1f1f1;color:#555;border-color:#ccc;font-weight:500}
.glance{background:#fafafc;border:1px solid #e2e2e8;border-radius:.6em;padding:.6em 1em;margin:1em 0}
.glance p{margin:.2em 0}.glance ul{margin:.3em 0;padding-left:1.1em}.glance li{margin:.15em 0}
td.key{white-space:nowrap}td.verdict p{margin:.35em 0 0;font-size:.92em}
details{margin-top:.35em;font-size:.9em;color:#333}
summary{cursor:pointer;color:#0b57d0}details ul{padding-left:1.1em;margin:.3em 0}
td.fig{width:calc(200px + 1em)}img.thumb{width:200px;max-width:100%;height:auto;border:1px solid #ddd;display:block}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
figure .close{display:none}
figure:target{position:fixed;inset:0;margin:0;z-index:10;background:rgba(20,20,24,.94);padding:1em;overflow:auto;
display:flex;flex-direction:column;align-items:center}
figure:target img{max-width:100%;max-height:88vh;background:#fff}figure:target figcaption{color:#eee}
figure:target .close{display:block;align-self:flex-end;color:#fff;font-weight:600;margin-bottom:.4em}
figure:target figcaption a{color:#9cf}
.status-ok{color:#116b23}.status-failed{color:#a11}.status-skipped{color:#666}
@media (max-width:760px){
table.claims thead{display:none}
table.claims,table.claims tbody,table.claims tr,table.claims td{display:block;width:auto}
table.claims tr{border:1px solid #ccc;border-radius:.4em;margin:.8em 0}
table.claims td{border:none;border-top:1px solid #eee}
table.claims td[data-label]::before{content:attr(data-label);display:block;font-size:.75em;color:#666}
}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _figure_id(path: str) -> str:
    return "fig-" + _slug(path)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def badge(verdict: str, text: str | None = None) -> str:
    """The verdict as a coloured label (``text`` in its place where given)."""
    return f'<span class="v v-{VERDICT_CLASS[verdict]}">{html.escape(text or verdict)}</span>'


def readings(claims: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, list[str]]]]:
    """One reading per group of parts, in report order: (group, its first part, verdict → claim keys)."""
    found: dict[str, tuple[str, dict[str, list[str]]]] = {}
    for claim in claims:
        keys = found.setdefault(claim["group"], (claim["part"], {}))[1]
        keys.setdefault(claim["verdict"], []).append(claim["key"])
    return [(group, part, keys) for group, (part, keys) in found.items()]


def _basis(claims: list[dict[str, Any]], group: str) -> str:
    """Which of ``group``'s claims rest on a confirmatory measurement and which on exploratory ones ("" if none
    says)."""
    said = {c["key"]: c["numbers"]["confirmatory"] for c in claims
            if c["group"] == group and "confirmatory" in c.get("numbers", {})}
    kinds = [(kind, [k for k, v in said.items() if v == flag]) for kind, flag in (("confirmatory", True),
                                                                                  ("exploratory", False))]
    return "; ".join(f"{kind}: {', '.join(keys)}" for kind, keys in kinds if keys)


def _glance_html(claims: list[dict[str, Any]], parts: list[dict[str, Any]]) -> str:
    """The strip at the top: verdict counts, one line per group of parts (its verdicts, whether its measurements
    are confirmatory, a link to the forest plot of its effects where it has one)."""
    counts = " ".join(badge(v, f"{v}: {n}") for v in VERDICT_CLASS if (n := sum(c["verdict"] == v for c in claims)))
    forests = {part["name"]: path for part in parts for path, caption in part["output"]["figures"]
               if caption.lower().startswith(FOREST_ALT)}
    lines = []
    for group, part, keys in readings(claims):
        said = " · ".join(badge(v) + " " + ", ".join(f'<a href="#claim-{html.escape(k)}">{html.escape(k)}</a>'
                                                        for k in keys[v]) for v in VERDICT_CLASS if v in keys)
        basis = _basis(claims, group)
        said += f" <small>({html.escape(basis)})</small>" if basis else ""
        forest = next((forests[c["part"]] for c in claims if c["group"] == group and c["part"] in forests), None)
        said += f' · <a href="#{_figure_id(forest)}">the effects with their intervals</a>' if forest else ""
        lines.append(f'<li><a href="#part-{html.escape(part)}"><b>{html.escape(group)}</b></a>: {said}</li>')
    return (f'<div class="glance" id="glance"><p><b>{len(claims)} claims</b> {counts}</p>'
            f"<ul>{''.join(lines)}</ul></div>")


def _thumbnail(path: Path) -> str | None:
    """The figure at ``path`` as a PNG data URI twice the thumbnail width (no upscaling), 128 colours; None where
    the file is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            picture = image.convert("RGB")
    except (UnidentifiedImageError, OSError):
        return None
    width = min(2 * THUMB_PX, picture.width)
    picture = picture.resize((width, round(picture.height * width / picture.width)), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.quantize(colors=128).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _verdict_cell(claim: dict[str, Any]) -> str:
    """The verdict, its immediate cause, and the rule with further evidence behind a ``<details>``."""
    cell = badge(claim["verdict"])
    if claim["headline"]:
        cell += f"<p>{rich(claim['headline'])}</p>"
    if claim["reason"] or claim["details"]:
        more = " and other measurements" if claim["details"] else ""
        items = "".join(f"<li>{rich(d)}</li>" for d in claim["details"])
        cell += (f"<details><summary>rule{more}</summary><p>{rich(claim['reason'])}</p>"
                 + (f"<ul>{items}</ul>" if items else "") + "</details>")
    return f'<td class="verdict" data-label="verdict">{cell}</td>'


def _claim_row(claim: dict[str, Any], out_dir: Path, thumbs: dict[str, str | None], shown: set[str]) -> str:
    """One row of the claims table; its figure's thumbnail opens the full figure (in the page where shown)."""
    esc = html.escape
    links = [f'<a href="#part-{esc(claim["part"])}">part</a>']
    if claim["config"]:
        links.append(f'<a href="{esc(claim["config"])}">config</a>')
    figure = ""
    if claim["figure"]:
        path = claim["figure"]
        if path not in thumbs:
            thumbs[path] = _thumbnail(out_dir / path)
        target = f"#{_figure_id(path)}" if path in shown else esc(path)
        figure = (f'<a href="{target}" title="open the full figure"><img class="thumb" alt="figure of claim '
                  f'{esc(claim["key"])}" src="{thumbs[path]}"></a>' if thumbs[path] else
                  f'<a href="{esc(path)}">figure</a> (not an image this page can show)')
    return (f'<tr id="claim-{esc(claim["key"])}"><td class="key" data-label="#"><b>{esc(claim["key"])}</b></td>'
            f'<td data-label="claim">{rich(claim["statement"])}<br><small>{esc(claim["source"])}: '
            f'{rich(claim["provenance"])} · {" · ".join(links)}</small></td>'
            f'<td class="fig" data-label="figure">{figure}</td>'
            f'<td data-label="the paper reports">{rich(claim["paper_says"])}</td>'
            f'<td data-label="jepalab measured">{rich(claim["measured"])}</td>{_verdict_cell(claim)}</tr>')


def _part_html(part: dict[str, Any], out_dir: Path) -> list[str]:
    """A part's section: status, error or skip reason, notes, figures (embedded) and tables."""
    esc, output = html.escape, part["output"]
    lines = [f'<h2 id="part-{esc(part["name"])}">{esc(part["title"])}</h2>',
             f'<p class="meta status-{part["status"]}">status: {esc(part["status"])} · {part["wall_time_s"]:.1f} s'
             f' · folder parts/{esc(part["name"])}/</p>']
    if part["status"] == "failed":
        lines.append(f"<pre>{esc(part['error'])}</pre>")
    if part["status"] == "skipped":
        lines.append(f"<p>Not run: {esc(part['reason'])}.</p>")
    lines += [f"<p>{rich(note)}</p>" for note in output["notes"]]
    for path, caption in output["figures"]:
        data = base64.b64encode((out_dir / path).read_bytes()).decode("ascii")
        lines.append(f'<figure id="{_figure_id(path)}"><a class="close" href="#claims">close ✕</a>'
                     f'<img alt="{esc(caption)}" src="data:image/png;base64,{data}"><figcaption>{esc(caption)} '
                     f'(<a href="{esc(path)}">PNG file</a>)</figcaption></figure>')
    for title, rows in output["tables"]:
        if rows:
            header = list(rows[0])
            lines.append(f'<h3>{esc(title)}</h3><div class="wide"><table><thead><tr>'
                         + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
            lines += ["<tr>" + "".join(f"<td>{esc(_cell(row.get(h, '')))}</td>" for h in header) + "</tr>"
                      for row in rows]
            lines.append("</tbody></table></div>")
    return lines


def _environment_html(env: dict[str, Any]) -> list[str]:
    flat = {k: v for k, v in env.items() if k not in ("packages", "part_wall_time_s")}
    flat |= {f"package {k}": v for k, v in env["packages"].items()}
    flat |= {f"wall time {k} (s)": round(v, 1) for k, v in env["part_wall_time_s"].items()}
    return ['<h2 id="environment">Environment</h2>', '<div class="wide"><table><tbody>',
            *[f"<tr><th>{html.escape(k)}</th><td>{html.escape(_cell(v))}</td></tr>" for k, v in flat.items()],
            "</tbody></table></div>"]


def render_html(report: dict[str, Any], out_dir: Path) -> str:
    """One page, figures embedded as data URIs, formulas as MathML, links only to anchors in the page or files under
    ``out_dir``."""
    esc, env, claims = html.escape, report["environment"], report["claims"]
    shown = {path for part in report["parts"] for path, _ in part["output"]["figures"]}
    thumbs: dict[str, str | None] = {}
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(report['title'])}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(report['title'])}</h1>",
             f'<p class="meta">mode <b>{esc(report["mode"])}</b> · {esc(env["time"])} · jepalab '
             f'{esc(str(env["packages"].get("jepalab")))} · git {esc(str(env["git_revision"]))} · {esc(env["device"])}'
             f' · {env["wall_time_s"]:.0f} s</p>', _glance_html(claims, report["parts"]),
             '<h2 id="setting">The setting</h2>']
    lines += [f"<p>{rich(p)}</p>" for p in SETTING]
    lines += ['<h2 id="claims">Claims</h2>',
              '<table class="claims"><thead><tr><th>#</th><th>claim</th><th>figure</th><th>the paper reports</th>'
              "<th>jepalab measured</th><th>verdict</th></tr></thead><tbody>"]
    lines += [_claim_row(claim, out_dir, thumbs, shown) for claim in claims]
    lines.append("</tbody></table>")
    for part in report["parts"]:
        lines += _part_html(part, out_dir)
    lines += [*_environment_html(env), "</body></html>"]
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    """The same report as Markdown (formulas as ``$…$`` LaTeX) with relative links to the figure files."""
    env, claims = report["environment"], report["claims"]
    counts = ", ".join(f"{n} {v}" for v in VERDICT_CLASS if (n := sum(c["verdict"] == v for c in claims)))
    lines = [f"# {report['title']}", "",
             f"mode **{report['mode']}** · {env['time']} · git {env['git_revision']} · {env['device']} · "
             f"{env['wall_time_s']:.0f} s", "", f"**{len(claims)} claims**: {counts}", ""]
    lines += [f"- **{group}**: " + " · ".join(f"{v}: {', '.join(keys[v])}" for v in VERDICT_CLASS if v in keys)
              for group, _, keys in readings(claims)]
    lines += ["", "## The setting", "", *[p + "\n" for p in SETTING]]
    lines += ["## Claims", "", "| # | claim | from | the paper reports | jepalab measured | verdict | links |",
              "|---|---|---|---|---|---|---|"]
    for c in claims:
        links = [f"[figure]({c['figure']})"] if c["figure"] else []
        links += [f"[config]({c['config']})"] if c["config"] else []
        why = "; ".join(t for t in (c["headline"], c["reason"], *c["details"]) if t)
        lines.append(f"| {c['key']} | {_md(c['statement'])} | {c['source']} ({_md(c['provenance'])}) | "
                     f"{_md(c['paper_says'])} | {_md(c['measured'])} | **{c['verdict']}** — {_md(why)} | "
                     f"{' '.join(links)} |")
    for part in report["parts"]:
        lines += ["", f"## {part['title']}", "", f"status: {part['status']} · {part['wall_time_s']:.1f} s"
                  + (f" · {part['error'] or part['reason']}" if part["status"] != "ok" else ""), ""]
        lines += [note + "\n" for note in part["output"]["notes"]]
        lines += [f"![{_md(caption)}]({path})\n" for path, caption in part["output"]["figures"]]
    return "\n".join(lines) + "\n"
