"""Saved records (pruning_lib.records): loaded only for identical parameters, else computed."""

from __future__ import annotations

import json

import pytest
import torch

from pruning_lib import records

HITS = torch.tensor([True, False, True, True, False, False, True, False, True])   # 9: not a multiple of 8


def make(calls: list[int]):  # noqa: ANN201
    """A compute function that counts its calls and returns two records."""
    def compute() -> list[dict]:
        calls.append(1)
        return [{"criterion": "l1", "seed": 0, "accuracy": 0.5, "hits": HITS, "ratio": (0.5, 0.25)},
                {"criterion": "random", "seed": 1, "accuracy": 0.25, "hits": ~HITS, "note": None}]
    return compute


def test_bool_tensors_round_trip_bit_packed():
    for n in (0, 1, 8, 9, 2000):
        hits = torch.rand(n, generator=torch.Generator().manual_seed(n)) > 0.5
        assert torch.equal(records.decode(json.loads(json.dumps(records.encode(hits)))), hits)


def test_other_tensors_are_refused():
    with pytest.raises(TypeError, match="bool tensors only"):
        records.encode(torch.zeros(3))


def test_without_a_file_it_computes_and_does_not_save(tmp_path, capsys):
    calls: list[int] = []
    got = records.load_or_compute("k", {"seeds": [0, 1]}, make(calls), directory=tmp_path)
    assert len(calls) == 1 and got[0]["accuracy"] == 0.5
    assert not (tmp_path / "k.json").exists()
    assert "no saved records" in capsys.readouterr().out


def test_recording_saves_then_identical_parameters_load_without_computing(tmp_path, monkeypatch, capsys):
    calls: list[int] = []
    monkeypatch.setenv("PRUNING_RECORD", "1")
    first = records.load_or_compute("k", {"seeds": (0, 1), "n": 100}, make(calls), directory=tmp_path)
    assert (tmp_path / "k.json").is_file() and len(calls) == 1
    monkeypatch.delenv("PRUNING_RECORD")
    again = records.load_or_compute("k", {"n": 100, "seeds": [0, 1]}, make(calls), directory=tmp_path)
    assert len(calls) == 1, "identical parameters (tuple or list, any key order) must load, not compute"
    assert "loaded 2 records" in capsys.readouterr().out
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a["hits"], b["hits"])
        assert {k: v for k, v in a.items() if k not in ("hits", "ratio")} == {
            k: v for k, v in b.items() if k not in ("hits", "ratio")}
    assert again[0]["ratio"] == [0.5, 0.25]


def test_different_parameters_compute_and_name_what_differs(tmp_path, monkeypatch, capsys):
    calls: list[int] = []
    monkeypatch.setenv("PRUNING_RECORD", "1")
    records.load_or_compute("k", {"seeds": [0, 1, 2], "source": "debian"}, make(calls), directory=tmp_path)
    monkeypatch.delenv("PRUNING_RECORD")
    capsys.readouterr()
    records.load_or_compute("k", {"seeds": [0], "source": "debian"}, make(calls), directory=tmp_path)
    assert len(calls) == 2
    assert "other parameters (seeds)" in capsys.readouterr().out


def test_a_file_that_is_not_a_records_file_raises_with_its_name(tmp_path):
    (tmp_path / "k.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="k.json is not a records file"):
        records.load_or_compute("k", {}, make([]), directory=tmp_path)


def test_scores_survive_a_json_round_trip_bit_for_bit_and_select_by_field():
    scores = {"a": torch.randn(5, generator=torch.Generator().manual_seed(0)), "b": torch.tensor([1 / 3])}
    rows = records.scores_to_records(scores, seed=0) + records.scores_to_records(
        {k: v + 1 for k, v in scores.items()}, seed=1)
    back = json.loads(json.dumps(rows))
    got = records.scores_from_records(back, seed=0)
    assert list(got) == ["a", "b"]
    assert all(torch.equal(got[k], scores[k]) for k in scores)
    assert torch.equal(records.scores_from_records(back, seed=1)["b"], scores["b"] + 1)


def test_scores_records_refuse_bad_input_with_clear_messages():
    with pytest.raises(TypeError, match="1-d tensor"):
        records.scores_to_records({"a": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match="no record has"):
        records.scores_from_records(records.scores_to_records({"a": torch.zeros(2)}, seed=0), seed=3)
