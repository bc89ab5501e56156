"""Report parts from the exact theory: Figure 2, the depth sweep, and the closed-form critical times."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from jepalab.report.claims import ClaimSpec, Finding, PartContext, PartOutput, module_parts, report_part, verdict
from jepalab.report.theory_figures import DepthSweepParams, Figure2Params, depth_sweep, figure2
from jepalab.rundir import write_json
from jepalab.theory import critical_time, critical_time_expansion, format_order, learning_order

DEPTHS = (1, 2, 3, 5)
EPS = 1e-3
PAPER = "Littwin et al. 2024"


FIGURE2_CLAIMS = (
    ClaimSpec("C1", "With equal ρ, JEPA and MAE both learn features greedily in λ (largest first), in the same order.",
              "paper", f"{PAPER}, Fig. 2 (a),(d) and caption; docs/theory.md, \"Figure 2\"",
              "Both objectives are greedy in λ (Fig. 2 a, d). Depth, ε and grids not recovered."),
    ClaimSpec("C2", "With equal λ, JEPA learns features in decreasing ρ; MAE is not greedy in ρ.",
              "paper", f"{PAPER}, Fig. 2 (b),(e) and caption; docs/theory.md, \"Figure 2\"",
              "Only JEPA is greedy with respect to ρ (Fig. 2 b, e)."),
    ClaimSpec("C3", "When λ increases while ρ decreases, JEPA and MAE learn the features in opposite orders.",
              "paper", f"{PAPER}, Fig. 2 (c),(f) and caption; docs/theory.md, \"When the orders flip\"",
              "The learning order is inverted between the objectives (Fig. 2 c, f)."),
)


@report_part("theory-figure2", "Figure 2: greedy in λ, only JEPA greedy in ρ", FIGURE2_CLAIMS,
             {"quick": 4.0, "full": 4.0}, order=10, group="theory")
def run_figure2(ctx: PartContext) -> PartOutput:
    """Figure 2 at the default depth plus the orders of its three presets at L = 1, 2, 3, 5 (ε = 1e-3)."""
    params = Figure2Params()
    figure2(ctx.out_dir, params)
    config = ctx.out_dir / "figure2.json"
    figure = ctx.relative(ctx.out_dir / "figure2.png")
    lam_grid, rho_grid = np.asarray(params.lam_grid), np.asarray(params.rho_grid)
    opp_lam, opp_rho = np.asarray(params.opposite_lam), np.asarray(params.opposite_rho)
    rows, orders = [], {}
    for depth in DEPTHS:
        for preset, lam, rho in (("λ varied", lam_grid, 1.0), ("ρ varied", 1.0, rho_grid),
                                 ("opposite", opp_lam, opp_rho)):
            for objective in ("jepa", "mae"):
                order = learning_order(objective, lam, rho, depth, params.eps, params.frac)
                orders[(preset, objective, depth)] = order.tolist()
                rows.append({"preset": preset, "objective": objective, "depth": depth, "order": format_order(order)})
    by_lam = np.argsort(-lam_grid, kind="stable").tolist()
    by_rho = np.argsort(-rho_grid, kind="stable").tolist()
    c1 = all(orders[("λ varied", o, d)] == by_lam for o in ("jepa", "mae") for d in DEPTHS)
    c2 = all(orders[("ρ varied", "jepa", d)] == by_rho and orders[("ρ varied", "mae", d)] != by_rho for d in DEPTHS)
    flipped = [d for d in DEPTHS if orders[("opposite", "jepa", d)] == orders[("opposite", "mae", d)][::-1]]
    mae_spread = {d: float(np.ptp(t) / np.min(t)) for d in DEPTHS
                  for t in [critical_time("mae", 1.0, rho_grid, d, params.eps, params.frac)]}

    def orders_text(preset: str) -> str:
        return "; ".join(f"L={d}: JEPA {format_order(np.array(orders[(preset, 'jepa', d)]))}, "
                         f"MAE {format_order(np.array(orders[(preset, 'mae', d)]))}" for d in DEPTHS)

    findings = [
        Finding("C1", f"λ = {list(params.lam_grid)}, ρ = 1, ε = {params.eps:g}: {orders_text('λ varied')}",
                verdict(c1), "holds iff both orders put the largest λ first at every depth", figure,
                ctx.relative(config)),
        Finding("C2", f"ρ = {list(params.rho_grid)}, λ = 1: {orders_text('ρ varied')}; MAE critical times differ by "
                      f"at most {max(mae_spread.values()):.2%}",
                verdict(c2), "holds iff JEPA orders by decreasing ρ and MAE does not, at every depth", figure,
                ctx.relative(config), {"mae_relative_spread": mae_spread}),
        Finding("C3", f"λ = {list(params.opposite_lam)}, ρ = {list(params.opposite_rho)}: {orders_text('opposite')}."
                      f" Opposite orders at L = {flipped}"
                      + (f"; not at L = {[d for d in DEPTHS if d not in flipped]}" if len(flipped) < len(DEPTHS)
                         else ""),
                verdict(params.depth in flipped),
                f"holds iff the orders are reversed at the figure's depth L = {params.depth}, ε = {params.eps:g} "
                "(docs/theory.md, \"When the orders flip\")", figure, ctx.relative(config),
                {"flipped_depths": flipped}),
    ]
    return PartOutput(findings=findings, figures=[(figure, "Figure 2 from the exact solution (L = 3, ε = 1e-3).")],
                      tables=[("Learning orders of the Figure 2 presets (first learned first)", rows)],
                      config=asdict(params))


DEPTH_CLAIMS = (
    ClaimSpec("C4", "The JEPA ρ-bias strengthens with encoder depth.", "paper",
              f"{PAPER}, abstract and ODE simulations; docs/theory.md, \"Depth and ε\"",
              "Deeper encoders enhance JEPA's greedy learning w.r.t. influence (stated without numbers)."),
    ClaimSpec("C5", "The ρ-bias is a finite-ε effect: at fixed depth it vanishes as ε → 0 (the leading term of the "
                    "critical time is ρ-independent).", "derived here",
              f"docs/theory.md, \"Depth and ε\" (from {PAPER}, Theorem 4.5)",
              "Not stated; implied by Theorem 4.5, whose leading term does not contain ρ."),
    ClaimSpec("A2", "The learning-order table of docs/theory.md (three presets, ε = 1e-2 … 1e-8, L = 1, 2, 3, 5; "
                    "from an independent numerical ODE integration) is reproduced by the exact critical times.",
              "derived here", "docs/theory.md, \"Learning-order table\"",
              "Not in the paper (an independent numerical integration of the ODEs)."),
)

DOC_RATIOS = {1: 1.0044, 2: 1.0729, 3: 1.2491, 5: 2.1321}  # docs/theory.md, "Depth and ε"
A2_TABLE = {  # docs/theory.md, "Learning-order table": JEPA orders at L = 1/2/3/5; None = init above threshold
    ("opposite 10%", 1e-2): ["1234", "4321", "4321", None], ("opposite 10%", 1e-3): ["1234", "2134", "4321", "4321"],
    ("opposite 10%", 1e-4): ["1234", "1234", "2314", "4321"], ("opposite 10%", 1e-6): ["1234", "1234", "1234", "2341"],
    ("opposite 10%", 1e-8): ["1234"] * 4,
    ("opposite 30%", 1e-2): ["1234", "1234", "3421", None], ("opposite 30%", 1e-3): ["1234", "1234", "2134", "3421"],
    ("opposite 30%", 1e-4): ["1234", "1234", "1234", "2341"], ("opposite 30%", 1e-6): ["1234"] * 4,
    ("opposite 30%", 1e-8): ["1234"] * 4,
    ("equal λ", 1e-2): ["4321", "4321", "4321", None], ("equal λ", 1e-3): ["4321"] * 4,
    ("equal λ", 1e-4): ["4321"] * 4, ("equal λ", 1e-6): ["4321"] * 4, ("equal λ", 1e-8): ["4321"] * 4,
}
A2_LAM = {"opposite 10%": [1.0, 0.9667, 0.9333, 0.9], "opposite 30%": [1.0, 0.9, 0.8, 0.7], "equal λ": [1.0] * 4}
A2_RHO = [0.4, 0.55, 0.7, 0.85]


@report_part("theory-depth", "Depth and initialisation scale: where the JEPA ρ-bias lives", DEPTH_CLAIMS,
             {"quick": 5.0, "full": 5.0}, order=20, group="theory")
def run_depth(ctx: PartContext) -> PartOutput:
    """Depth sweep figure, the ratio t*(ρ=0.4)/t*(ρ=0.85) over depth and ε, and the A2 order table."""
    params = DepthSweepParams()
    depth_sweep(ctx.out_dir, params)
    figure, config = ctx.relative(ctx.out_dir / "depth_sweep.png"), ctx.relative(ctx.out_dir / "depth_sweep.json")
    ratio = {}
    for depth in range(1, 9):
        t_low, t_high = critical_time("jepa", 1.0, [0.4, 0.85], depth, EPS)
        if t_low > 0 and t_high > 0:  # deeper, ε^(1/L) starts above the ρ = 0.4 threshold: undefined
            ratio[depth] = float(t_low / t_high)
    increasing = all(ratio[d + 1] > ratio[d] for d in list(ratio)[:-1])
    matches_doc = all(abs(ratio[d] - v) < 1e-4 for d, v in DOC_RATIOS.items())
    eps_grid = np.array([1e-3, 1e-6, 1e-9, 1e-12])
    vanishing = {}
    for depth in DEPTHS:
        t = critical_time("jepa", 1.0, np.array([[0.4], [0.85]]), depth, eps_grid)
        vanishing[depth] = (t[0] / t[1]).tolist()
    c5 = all(np.all(np.diff(v) < 0) and v[-1] - 1 < 0.25 * (v[0] - 1) for v in vanishing.values())

    rows, mismatches = [], []
    for (preset, eps), expected in A2_TABLE.items():
        for depth, want in zip(DEPTHS, expected):
            try:
                got = format_order(learning_order("jepa", np.array(A2_LAM[preset]), np.array(A2_RHO), depth, eps))
            except ValueError:
                got = None
            rows.append({"preset": preset, "eps": eps, "depth": depth, "table": want or "—", "jepalab": got or "—"})
            if got != want:
                mismatches.append(rows[-1])
    findings = [
        Finding("C4", "t*(ρ=0.4)/t*(ρ=0.85) at λ = 1, ε = 1e-3: "
                      + ", ".join(f"L={d}: {r:.4f}" for d, r in ratio.items())
                      + f"; the values in docs/theory.md (L = 1, 2, 3, 5) matched: {matches_doc}",
                verdict(increasing),
                f"holds iff the ratio increases strictly with depth (L = 1 … {max(ratio)}; deeper, the ρ = 0.4 "
                "feature starts above its threshold at ε = 1e-3)", figure, config,
                {"ratio": ratio}),
        Finding("C5", "ratio at ε = 1e-3 → 1e-12: " + "; ".join(
                    f"L={d}: " + " → ".join(f"{v:.4f}" for v in vals) for d, vals in vanishing.items()),
                verdict(c5), "holds iff the ratio falls monotonically towards 1 as ε → 0 (to < ¼ of its ε = 1e-3 "
                             "excess) at every depth", figure, config, {"ratio_by_eps": vanishing}),
        Finding("A2", f"{len(rows) - len(mismatches)} of {len(rows)} cells match"
                      + (f"; mismatches: {mismatches}" if mismatches else ""),
                verdict(not mismatches), "holds iff every cell (order or undefined) matches", figure, config),
    ]
    return PartOutput(findings=findings, figures=[(figure, "Depth sweep: JEPA ρ-bias over (L, ε) and order maps.")],
                      tables=[("Learning-order table of docs/theory.md, JEPA (MAE is 1234 in every valid cell)", rows)],
                      config=asdict(params))


CLOSED_FORM_CLAIMS = (
    ClaimSpec("C6", r"The JEPA critical time follows the paper's sum "
                    r"$\frac{1}{\lambda}\sum_{n} \frac{L}{n\,\rho^{2L-n-1}\,\varepsilon^{n/L}}$ (paper time), which "
                    r"becomes exact as $\varepsilon \to 0$.", "paper",
              f"{PAPER}, Theorem 4.5; docs/theory.md, \"JEPA critical time\"",
              r"$\tilde t^{*} = \frac{1}{\lambda}\sum_{n=1}^{2L-1} \frac{L}{n\,\rho^{2L-n-1}\,\varepsilon^{n/L}}"
              r" + \Theta(\log \varepsilon)$"),
    ClaimSpec("C7", r"MAE's critical time depends on λ at leading order: "
                    r"$\frac{1}{(L-1)\,\lambda\,\varepsilon^{(L-1)/L}}$ for $L \ge 2$, "
                    r"$\ln(1/\varepsilon)/\lambda$ for $L = 1$, plus $O(1)$.", "derived here",
              "docs/theory.md, \"MAE critical time\"",
              "A reviewer of the paper paraphrases: the MAE critical time depends only on the input variance."),
    ClaimSpec("C8", r"Critical times scale as $\varepsilon^{-(2L-1)/L}$ for JEPA and $\varepsilon^{-(L-1)/L}$ for "
                    r"MAE ($L \ge 2$).",
              "derived here", "docs/theory.md, \"Time scales\"", "Not stated beyond Theorem 4.5's leading term."),
)


@report_part("theory-closed-forms", "Critical times: exact vs the paper's expansion", CLOSED_FORM_CLAIMS,
             {"quick": 1.0, "full": 1.0}, order=30, group="theory")
def run_closed_forms(ctx: PartContext) -> PartOutput:
    """Exact critical times against the paper's expansion and the derived MAE/scale-law statements."""
    rows, deviation = [], {}
    for depth in (1, 2, 3, 5):
        for eps in (1e-2, 1e-4, 1e-6, 1e-8):
            exact = float(critical_time("jepa", 1.0, 0.6, depth, eps, time="paper"))
            paper = float(critical_time_expansion("jepa", 1.0, 0.6, depth, eps, terms="sum", time="paper"))
            mae = float(critical_time("mae", 1.0, 0.6, depth, eps))
            lead = float(critical_time_expansion("mae", 1.0, 0.6, depth, eps, terms="leading"))
            rows.append({"depth": depth, "eps": eps, "jepa_exact_tau": exact, "paper_sum_tau": paper,
                         "exact_over_sum": exact / paper, "mae_exact_t": mae, "mae_minus_leading": mae - lead})
            deviation.setdefault(depth, []).append(abs(exact / paper - 1))
    write_json(ctx.out_dir / "closed_forms.json", {"rows": rows, "lam": 1.0, "rho": 0.6})
    config = ctx.relative(ctx.out_dir / "closed_forms.json")
    moderate = {r["depth"]: r["exact_over_sum"] for r in rows if r["eps"] == 1e-2}
    above = {d: devs[1] for d, devs in deviation.items() if devs[1] >= 1e-4}  # devs[1]: ε = 1e-4
    mae_offsets = {(r["depth"], r["eps"]): r["mae_minus_leading"] for r in rows}
    bounded = all(abs(mae_offsets[(d, 1e-8)] - mae_offsets[(d, 1e-6)]) < 0.05 for d in (1, 2, 3, 5))
    eps = np.array([1e-6, 1e-7, 1e-8])
    slopes = {}
    for objective, exponent in (("jepa", lambda d: (2 * d - 1) / d), ("mae", lambda d: (d - 1) / d)):
        for depth in (2, 3, 5):
            t = critical_time(objective, 1.0, 0.6, depth, eps)
            slopes[f"{objective} L={depth}"] = float(-np.polyfit(np.log(eps), np.log(t), 1)[0] / exponent(depth))
    converges = all(np.all(np.diff(d) < 0) and d[-1] < 1e-4 for d in deviation.values())
    findings = [
        Finding("C6", "|exact/sum − 1| (λ = 1, ρ = 0.6) at ε = 1e-2, 1e-4, 1e-6, 1e-8: " + "; ".join(
                    f"L={d}: " + ", ".join(f"{v:.1e}" for v in devs) for d, devs in deviation.items())
                      + f". At ε = 1e-2 exact/sum = {moderate[5]:.3f} at L = 5. At ε = 1e-4 the deviation is "
                      + ("< 1e-4 at every depth" if not above else "< 1e-4 at L = " + str(
                          [d for d in deviation if d not in above]) + "; not at " + ", ".join(
                          f"L = {d} ({v:.1e})" for d, v in above.items()))
                      + " (the sum omits the Θ(log ε) term, docs/theory.md)",
                verdict(converges), "holds iff the deviation falls monotonically with ε at every depth and is "
                                    "< 1e-4 at ε = 1e-8", None, config, {"deviation": deviation}),
        Finding("C7", "MAE t* − leading term at ε = 1e-6 → 1e-8: " + ", ".join(
                    f"L={d}: {mae_offsets[(d, 1e-6)]:.4f} → {mae_offsets[(d, 1e-8)]:.4f}" for d in (1, 2, 3, 5)),
                verdict(bounded), "holds iff the remainder stays O(1) (changes < 0.05) while the leading term grows "
                                  "100× (L ≥ 2)", None, config),
        Finding("C8", "fitted exponent / predicted (ε = 1e-6…1e-8): " + ", ".join(
                    f"{k}: {v:.4f}" for k, v in slopes.items()),
                verdict(all(abs(v - 1) < 0.02 for v in slopes.values())),
                "holds iff every fitted exponent is within 2 % of the prediction", None, config, {"slopes": slopes}),
    ]
    return PartOutput(findings=findings, tables=[("Exact critical times vs the paper's sum (paper time τ) and "
                                                  "MAE vs its leading term (λ = 1, ρ = 0.6)", rows)],
                      config={"lam": 1.0, "rho": 0.6})


THEORY_PARTS = module_parts(__name__)
