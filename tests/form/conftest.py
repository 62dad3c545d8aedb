import sys
from pathlib import Path

# The helpers here are imported by the tests and by the test hub process alike.
sys.path.insert(0, str(Path(__file__).parent))
