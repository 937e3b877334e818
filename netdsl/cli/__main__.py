"""``python -m netdsl.cli``."""
import sys

from . import main

sys.exit(main())
