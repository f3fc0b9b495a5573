import sqlite3

from harness.store.cache import ResultCache, cache_key


def test_put_get_and_key_stability(tmp_path):
    c = ResultCache(tmp_path / "c.sqlite")
    k = cache_key(model="m", prompt="p", settings={"b": 1, "a": 2})
    assert k == cache_key(settings={"a": 2, "b": 1}, prompt="p", model="m")
    c.put_many({k: "out", "k2": [1.5, True]})
    assert c.get_many([k, "k2", "missing"]) == {k: "out", "k2": [1.5, True]}
    assert len(ResultCache(tmp_path / "c.sqlite")) == 2  # persisted


def test_corrupt_entry_is_never_reused(tmp_path):
    c = ResultCache(tmp_path / "c.sqlite")
    c.put_many({"k": "good output"})
    db = sqlite3.connect(tmp_path / "c.sqlite")
    db.execute("UPDATE results SET value = '\"tampered\"' WHERE key = 'k'")
    db.commit()
    assert c.get_many(["k"]) == {}
