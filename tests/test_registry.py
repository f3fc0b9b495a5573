import json

from harness.registry import Registry


def make_adapter(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
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
