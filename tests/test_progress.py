"""progress_bar: a tqdm bar on a terminal, whole lines (no carriage returns, no cursor moves) elsewhere."""

import io

from jepalab.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_without_a_tty_nested_bars_write_whole_lines():
    out = io.StringIO()
    for _ in progress_bar(range(2), desc="outer", file=out, plain_interval=0.0):
        for _ in progress_bar(range(3), desc="inner", file=out, plain_interval=0.0, leave=False, position=1):
            pass
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[-1].startswith("outer: 100%") and all(line.startswith(("outer", "inner")) for line in lines)


def test_without_a_tty_updates_are_throttled_to_the_plain_interval():
    out = io.StringIO()
    bar = progress_bar(total=1000, desc="steps", file=out, plain_interval=3600.0)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert out.getvalue().count("\n") == 2  # the opening line and the final one


def test_terminal_only_options_are_accepted_without_a_tty():
    out = io.StringIO()
    with progress_bar(total=2, file=out, dynamic_ncols=True, plain_interval=0.0) as bar:
        bar.update(2)
    assert "2/2" in out.getvalue() and "\r" not in out.getvalue()


def test_disabled_bars_write_nothing():
    out = io.StringIO()
    for _ in progress_bar(range(5), file=out, disable=True):
        pass
    assert out.getvalue() == ""


def test_on_a_terminal_it_is_a_plain_tqdm_bar():
    out = _Terminal()
    bar = progress_bar(total=2, desc="tty", file=out)
    bar.update(2)
    bar.close()
    assert "\r" in out.getvalue()
