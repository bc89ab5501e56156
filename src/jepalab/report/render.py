"""Render a ``jepalab reproduce`` report as one self-contained HTML page and as Markdown."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

SETTING = [
    "Littwin et al. (NeurIPS 2024) study deep linear networks trained by gradient flow: a depth-L linear encoder "
    "W̄ = W^L⋯W^1 and one linear predictor V. JEPA predicts the stop-gradient latent of the target view, "
    "½E‖V W̄ x − SG(W̄ y)‖²; MAE reconstructs the target in input space, ½E‖V W̄ x − y‖².",
    "With covariances diagonal in one basis, each feature i has a cross-covariance λ_i = (Σyx)_ii and a regression "
    "coefficient ρ_i = λ_i/(Σxx)_ii. From a small balanced initialisation (encoder amplitude w̄(0) = ε) both "
    "objectives learn features one after another; the order is decided by the critical times.",
    "The paper's claim: both objectives are greedy in λ, but only JEPA is also greedy in ρ — more so the deeper the "
    "encoder — so JEPA prefers predictive, low-noise features while MAE spends capacity on high-variance ones.",
    "jepalab solves the per-feature dynamics exactly (closed forms, no ODE solver), trains the full-matrix networks, "
    "and checks each claim below with a rule written in code. Time is gradient-flow time t (learning rate × steps) "
    "unless marked τ = L·t (the paper's units). Where the paper's own parameters were not recovered, jepalab's "
    "choices are stated in each part's config.",
]
VERDICT_CLASS = {"holds": "holds", "does not hold": "fails", "not tested here": "untested"}

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.meta{color:#555;font-size:.9em}table{border-collapse:collapse;width:100%;font-size:.86em;margin:.6em 0}
th,td{border:1px solid #ddd;padding:.35em .5em;vertical-align:top;text-align:left}th{background:#f4f4f6}
td.holds{background:#e3f6e5;font-weight:600;color:#116b23}td.fails{background:#fde8e8;font-weight:600;color:#a11}
td.untested{background:#f1f1f1;color:#666}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
.status-ok{color:#116b23}.status-failed{color:#a11}.status-skipped{color:#666}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _figure_id(path: str) -> str:
    return "fig-" + _slug(path)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _verdict_counts(claims: list[dict[str, Any]]) -> str:
    counts = {v: sum(c["verdict"] == v for c in claims) for v in VERDICT_CLASS}
    return ", ".join(f"{n} {v}" for v, n in counts.items())


def render_html(report: dict[str, Any], out_dir: Path) -> str:
    """One page, figures embedded as data URIs, links only to anchors in the page or files under ``out_dir``."""
    esc = html.escape
    env = report["environment"]
    lines = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(report['title'])}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(report['title'])}</h1>",
             f'<p class="meta">mode <b>{esc(report["mode"])}</b> · {esc(env["time"])} · jepalab '
             f'{esc(str(env["packages"].get("jepalab")))} · git {esc(str(env["git_revision"]))} · {esc(env["device"])}'
             f' · {env["wall_time_s"]:.0f} s · {esc(_verdict_counts(report["claims"]))}</p>',
             '<h2 id="setting">The setting</h2>']
    lines += [f"<p>{esc(p)}</p>" for p in SETTING]
    lines += ['<h2 id="claims">Claims</h2>',
              "<table><thead><tr><th>#</th><th>claim</th><th>from</th><th>the paper reports</th>"
              "<th>jepalab measured</th><th>verdict</th><th>links</th></tr></thead><tbody>"]
    for claim in report["claims"]:
        links = [f'<a href="#part-{esc(claim["part"])}">part</a>']
        if claim["figure"]:
            links.append(f'<a href="#{_figure_id(claim["figure"])}">figure</a>')
        if claim["config"]:
            links.append(f'<a href="{esc(claim["config"])}">config</a>')
        lines.append(
            f'<tr id="claim-{esc(claim["key"])}"><td>{esc(claim["key"])}</td><td>{esc(claim["statement"])}</td>'
            f'<td>{esc(claim["source"])}<br><small>{esc(claim["provenance"])}</small></td>'
            f'<td>{esc(claim["paper_says"])}</td><td>{esc(claim["measured"])}</td>'
            f'<td class="{VERDICT_CLASS[claim["verdict"]]}">{esc(claim["verdict"])}'
            f'<br><small>{esc(claim["reason"])}</small></td><td>{" · ".join(links)}</td></tr>')
    lines.append("</tbody></table>")
    for part in report["parts"]:
        output = part["output"]
        lines.append(f'<h2 id="part-{esc(part["name"])}">{esc(part["title"])}</h2>')
        lines.append(f'<p class="meta status-{part["status"]}">status: {esc(part["status"])} · '
                     f'{part["wall_time_s"]:.1f} s · folder parts/{esc(part["name"])}/</p>')
        if part["status"] == "failed":
            lines.append(f"<pre>{esc(part['error'])}</pre>")
        if part["status"] == "skipped":
            lines.append(f"<p>Not run: {esc(part['reason'])}.</p>")
        lines += [f"<p>{esc(note)}</p>" for note in output["notes"]]
        for path, caption in output["figures"]:
            data = base64.b64encode((out_dir / path).read_bytes()).decode("ascii")
            lines.append(f'<figure id="{_figure_id(path)}"><img alt="{esc(caption)}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{esc(caption)} '
                         f'(<a href="{esc(path)}">PNG file</a>)</figcaption></figure>')
        for title, rows in output["tables"]:
            if not rows:
                continue
            header = list(rows[0])
            lines.append(f"<h3>{esc(title)}</h3><table><thead><tr>"
                         + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>")
            lines += ["<tr>" + "".join(f"<td>{esc(_cell(row.get(h, '')))}</td>" for h in header) + "</tr>"
                      for row in rows]
            lines.append("</tbody></table>")
    lines += ['<h2 id="environment">Environment</h2>', "<table><tbody>"]
    flat = {k: v for k, v in env.items() if k not in ("packages", "part_wall_time_s")}
    flat |= {f"package {k}": v for k, v in env["packages"].items()}
    flat |= {f"wall time {k} (s)": round(v, 1) for k, v in env["part_wall_time_s"].items()}
    lines += [f"<tr><th>{esc(k)}</th><td>{esc(_cell(v))}</td></tr>" for k, v in flat.items()]
    lines += ["</tbody></table>", "</body></html>"]
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    """The same report as Markdown with relative links to the figure files."""
    env = report["environment"]
    lines = [f"# {report['title']}", "",
             f"mode **{report['mode']}** · {env['time']} · git {env['git_revision']} · {env['device']} · "
             f"{env['wall_time_s']:.0f} s · {_verdict_counts(report['claims'])}", "", "## The setting", ""]
    lines += [p + "\n" for p in SETTING]
    lines += ["## Claims", "", "| # | claim | from | the paper reports | jepalab measured | verdict | links |",
              "|---|---|---|---|---|---|---|"]
    for c in report["claims"]:
        links = [f"[figure]({c['figure']})"] if c["figure"] else []
        links += [f"[config]({c['config']})"] if c["config"] else []
        lines.append(f"| {c['key']} | {_md(c['statement'])} | {c['source']} ({_md(c['provenance'])}) | "
                     f"{_md(c['paper_says'])} | {_md(c['measured'])} | **{c['verdict']}** — {_md(c['reason'])} | "
                     f"{' '.join(links)} |")
    for part in report["parts"]:
        lines += ["", f"## {part['title']}", "", f"status: {part['status']} · {part['wall_time_s']:.1f} s"
                  + (f" · {part['error'] or part['reason']}" if part["status"] != "ok" else ""), ""]
        lines += [note + "\n" for note in part["output"]["notes"]]
        lines += [f"![{_md(caption)}]({path})\n" for path, caption in part["output"]["figures"]]
    return "\n".join(lines) + "\n"
