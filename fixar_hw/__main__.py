"""``python -m fixar_hw`` runs the ``fixar-hw`` command line."""

import sys

from .cli import main

sys.exit(main())
