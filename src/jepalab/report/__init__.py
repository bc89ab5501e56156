"""Figures, experiments and reports: the layer that ties theory, simulators, training and evaluation together."""
