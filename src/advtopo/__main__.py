"""``python -m advtopo``: the same as the ``advtopo`` command."""
import sys

from advtopo.cli import main

sys.exit(main())
