"""jepalab.theory.inverse: the inverse tables check themselves against the exact solver when built."""

from jepalab.theory.inverse import _inverse_table


def test_tables_are_self_checked():
    for objective in ("jepa", "mae"):
        for depth in (1, 2, 4):
            assert _inverse_table(objective, depth).max_error <= 1e-11
