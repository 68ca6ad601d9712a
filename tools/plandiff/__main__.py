"""`python -m tools.plandiff`."""

import sys

from tools.plandiff.cli import main

sys.exit(main())
