"""`python -m devgem_cli`: the same as the `devgem` command."""

import sys

from devgem_cli.main import main

sys.exit(main())
