"""Metrics on embedding arrays: numpy or torch (n, d) arrays in, floats or arrays out. Never imports training code."""

from jepalab.eval.spectral import rankme

__all__ = ["rankme"]
