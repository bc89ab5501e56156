"""pyplot(): matplotlib on the Agg backend."""

from jepalab.plotting import pyplot


def test_pyplot_uses_the_agg_backend():
    plt = pyplot()
    assert plt.get_backend().lower() == "agg"
    fig, _ = plt.subplots()
    plt.close(fig)
