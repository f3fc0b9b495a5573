import json

from harness.store.registry import Registry


def make_adapter(tmp_path, name):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (d / "adapter_model.safetensors").write_bytes(b"weights-" + name.encode())
    return d


def promote(reg, tmp_path, aid, run):
    return reg.promote(adapter_id=aid, fingerprint=f"fp-{aid}", source=make_adapter(tmp_path, aid), run_id=run,
                       base_fingerprint="base", config_hash="cfg", data={"train": "abc"},
                       metrics={"golden": {"candidate": {"pass_rate": 0.8}}}, gates=[], reason="all gates passed")


def test_promotion_copies_artifact_and_moves_champion(tmp_path):
    reg = Registry(tmp_path / "registry")
    assert reg.champion() is None and reg.versions() == []
    v1 = promote(reg, tmp_path, "sft-aaa", "run-1")
    assert reg.champion().adapter_id == "sft-aaa"
    assert (v1.path / "adapter_model.safetensors").read_bytes() == b"weights-sft-aaa"
    promote(reg, tmp_path, "sft-bbb", "run-2")
    reopened = Registry(tmp_path / "registry")
    assert reopened.champion().adapter_id == "sft-bbb"
    assert [v.adapter_id for v in reopened.versions()] == ["sft-aaa", "sft-bbb"]
    assert [e["action"] for e in reopened.events()] == ["promote", "promote"]
    assert reopened.champion().metrics["golden"]["candidate"]["pass_rate"] == 0.8
    # no temporary folders left behind
    assert sorted(p.name for p in (tmp_path / "registry" / "artifacts").iterdir()) == ["sft-aaa", "sft-bbb"]


def test_rollback_undoes_promotions_in_order_and_records_why(tmp_path):
    reg = Registry(tmp_path / "registry")
    promote(reg, tmp_path, "sft-aaa", "run-1")
    promote(reg, tmp_path, "sft-bbb", "run-2")
    promote(reg, tmp_path, "sft-bbb", "run-3")  # the same adapter promoted again is not a new champion
    reg.promote(adapter_id="sft-ccc", fingerprint="fp-ccc", source=make_adapter(tmp_path, "sft-ccc"), run_id="run-4",
                base_fingerprint="base", config_hash="cfg", data={}, metrics={}, gates=[],
                reason="looked fine to me", action="manual-promote")
    assert reg.lineage() == ["sft-aaa", "sft-bbb", "sft-ccc"]
    old, new = reg.rollback("ccc answers in French")
    assert (old.adapter_id, new.adapter_id) == ("sft-ccc", "sft-bbb")
    old, new = Registry(tmp_path / "registry").rollback("bbb leaks training data")
    assert (old.adapter_id, new.adapter_id) == ("sft-bbb", "sft-aaa")
    reopened = Registry(tmp_path / "registry")
    assert reopened.champion().adapter_id == "sft-aaa" and reopened.lineage() == ["sft-aaa"]
    events = reopened.events()
    assert [e["action"] for e in events] == ["promote"] * 3 + ["manual-promote", "rollback", "rollback"]
    assert events[3]["reason"] == "looked fine to me"
    assert events[4]["adapter_id"] == "sft-bbb" and events[4]["run_id"] == "run-2"
    assert events[4]["reason"] == "ccc answers in French (replaces sft-ccc)"
    assert all(e["at"] for e in events)
    # every version stays registered and its artifact stays on disk: a rollback only moves the champion
    assert [v.adapter_id for v in reopened.versions()] == ["sft-aaa", "sft-bbb", "sft-ccc"]
    assert all((v.path / "adapter_model.safetensors").is_file() for v in reopened.versions())


def test_rollback_without_an_earlier_champion_changes_nothing(tmp_path):
    import pytest

    from harness.errors import TunegateError

    reg = Registry(tmp_path / "registry")
    with pytest.raises(TunegateError, match="no adapter has been promoted yet"):
        reg.rollback("oops")
    promote(reg, tmp_path, "sft-aaa", "run-1")
    with pytest.raises(TunegateError, match="sft-aaa is the only champion"):
        reg.rollback("oops")
    assert reg.champion().adapter_id == "sft-aaa" and len(reg.events()) == 1
    promote(reg, tmp_path, "sft-bbb", "run-2")
    reg.rollback("bad")
    with pytest.raises(TunegateError, match="sft-aaa is the only champion"):
        reg.rollback("again")
    assert reg.champion().adapter_id == "sft-aaa" and [e["action"] for e in reg.events()][-1] == "rollback"
