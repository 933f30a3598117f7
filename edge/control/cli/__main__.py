"""``python -m edge.control.cli``: the same as the ``edgelab`` command."""

import sys

from edge.control.cli.main import main

sys.exit(main())
