"""The three roles every suite compares on the same items: base (no adapter), candidate (the new
adapter) and champion (the last promoted adapter, when there is one)."""

BASE = "base"
CANDIDATE = "candidate"
CHAMPION = "champion"
ROLES = (BASE, CANDIDATE, CHAMPION)
BASELINES = (BASE, CHAMPION)  # the roles a candidate is held non-inferior to
