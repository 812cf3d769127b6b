"""Put this folder on PYTHONPATH to make TensorFlow unimportable, as on a machine without it.

A None entry in sys.modules is Python's own way to mark a module absent: `import tensorflow`
raises ModuleNotFoundError and `importlib.util.find_spec("tensorflow")` returns None.
"""

import sys

sys.modules["tensorflow"] = None  # type: ignore[assignment]
