"""``python -m proxy`` is the ``rosetta`` command."""

import sys

from proxy.cli import main

sys.exit(main())
