"""`python -m harness.cli`: the `tunegate` command."""
import sys

from harness.cli.main import main

sys.exit(main())
