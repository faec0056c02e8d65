"""``python -m splitinf`` is the ``splitinf`` command."""

import sys

from splitinf.cli import main

sys.exit(main())
