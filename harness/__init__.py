"""tunegate's library: config, data, engine, metrics, gates, registry and the pytest plugin."""
__version__ = "0.1.0"

import os as _os

# oneDNN, under torch's CPU kernels, keeps a compiled kernel per matrix shape: up to 1024 in each of
# two caches. Training and scoring bring a new shape with every padded length, so by the end of the
# demo run the caches held about 1 GB. One batch needs a few dozen; 64 trains as fast (measured).
# Read when oneDNN first runs, so set on import; a user's own setting wins.
for _var in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
    _os.environ.setdefault(_var, "64")
