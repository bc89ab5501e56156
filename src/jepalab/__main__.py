"""``python -m jepalab`` is the ``jepalab`` command (also what ``torchrun -m jepalab`` runs)."""

import sys

from jepalab.cli import main

if __name__ == "__main__":
    sys.exit(main())
