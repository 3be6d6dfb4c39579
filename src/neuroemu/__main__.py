"""``python -m neuroemu``: the command line without the console script (same as ``neuroemu``)."""
import sys

from neuroemu.cli import main

sys.exit(main())
