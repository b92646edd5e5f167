"""kprov's test suite.

Some machines (this project's CI kind among them) set PYTHONDONTWRITEBYTECODE: every test
worker, and every `python -m kprov` a test starts, then compiles kprov and the test modules
afresh, about a tenth of the suite's time. The suite writes its bytecode (gitignored); this
package is imported before any test module or fixture, and before kprov.
"""

import os
import sys

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
