"""``python -m neuroemu`` = the ``neuroemu`` command."""

import sys

from .cli import main

sys.exit(main())
