"""`python -m gatekeeper_client.mcp --config FILE`: the same as `gatekeeper-mcp`."""

import sys

from .serve import main

sys.exit(main())
