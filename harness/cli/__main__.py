"""`python -m harness.cli`: the `tunegate` command."""
import sys

from harness.cli import main

sys.exit(main())
