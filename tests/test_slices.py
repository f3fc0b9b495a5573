import pytest

from harness.metrics.slices import gap_keys, slice_gap


def recs(spec):
    return [{"example_id": f"{region}-{i}", "passed": i < passed, "slice": {"region": region}}
            for region, (passed, n) in spec.items() for i in range(n)]


def test_gap_worst_slice_and_ci():
    out = slice_gap(recs({"NA": (20, 25), "EMEA": (10, 25), "APAC": (19, 25)}), "region")
    assert out["rates"] == {"APAC": 0.76, "EMEA": 0.4, "NA": 0.8}
    assert out["max_gap"] == pytest.approx(0.4) and out["worst_slice"] == "EMEA"
    assert out["worst_vs_overall"] == pytest.approx(0.4 - 49 / 75)
    lo, hi = out["gap_ci"]
    assert 0.1 < lo < 0.4 < hi < 0.7
    assert out["sizes"] == {"APAC": 25, "EMEA": 25, "NA": 25}


def test_equal_slices_have_a_small_gap():
    out = slice_gap(recs({"NA": (15, 30), "EMEA": (15, 30)}), "region")
    assert out["max_gap"] == 0 and out["gap_ci"][0] == 0


def test_missing_slice_key_is_a_clear_error():
    with pytest.raises(KeyError, match="has no slice field 'customer'"):
        slice_gap(recs({"NA": (1, 2)}), "customer")


def test_gap_keys_are_the_keys_every_item_carries_in_slices_big_enough():
    slices = [{"region": r, "customer": f"c{i}", "tier": "pro"} for i, r in enumerate(["NA", "EMEA"] * 5)]
    slices[0]["plan"] = "free"
    keys, skipped = gap_keys(slices, min_size=5)
    assert keys == ["region"]
    assert skipped == {"customer": "value 'c0' has 1 items, fewer than 5", "tier": "one value only ('pro')",
                       "plan": "9 of 10 items lack it"}
    assert gap_keys(slices, min_size=6)[0] == [] and gap_keys([{}, {}], 1) == ([], {})
