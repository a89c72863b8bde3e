"""``python -m fixar_hw`` runs the ``fixar-hw`` command line."""

import sys

from fixar_hw.apps.cli import main

sys.exit(main())
