"""Formulas in report text: ``$…$`` spans hold LaTeX (one source per formula; report.md keeps them as they are), and
the HTML page shows them as MathML converted by latex2mathml."""

from __future__ import annotations

import html
import re

from latex2mathml.converter import convert

__all__ = ["MATH", "html_with_math"]

MATH = re.compile(r"\$(?=\S)([^$\n]+?)(?<=\S)\$")
"""A ``$…$`` span: no line break or ``$`` inside, no space just inside either ``$``."""


def html_with_math(text: str) -> str:
    """``text`` as HTML: each ``$…$`` span as inline MathML, the rest escaped."""
    parts, end = [], 0
    for match in MATH.finditer(text):
        parts += [html.escape(text[end:match.start()]), convert(match.group(1))]
        end = match.end()
    return "".join([*parts, html.escape(text[end:])])

