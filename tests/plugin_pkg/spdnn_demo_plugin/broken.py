"""A plugin that fails to import (tests/test_plugins.py)."""

import spdnn_no_such_dependency  # noqa: F401
