import sys

from spdnn.cli import main

sys.exit(main())
