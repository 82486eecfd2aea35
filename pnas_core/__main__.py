"""``python -m pnas_core`` runs the CLI."""

import sys

from pnas_core.cli import main

sys.exit(main())
