"""`python -m mrd_backend.cli`: the same as the `mrd` command."""
import sys

from . import main

sys.exit(main())
