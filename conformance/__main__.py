"""`python -m conformance ...`: the same as `claude-max-api conformance ...`."""

import sys

from conformance.cli import main

sys.exit(main())
