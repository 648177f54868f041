"""The LoCoMo recall benchmark: its reader, and an end-to-end run on a tiny synthetic dataset."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "memory_locomo.py"


def _turns(session: int, lines: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"speaker": who, "dia_id": f"D{session}:{i}", "text": text}
            for i, (who, text) in enumerate(lines, 1)]


def _conversation_one() -> dict[str, object]:
    session_1 = _turns(1, [
        ("Zed", "Hi Amy! How have you been lately?"),
        ("Amy", "Pretty good, work keeps me busy these days."),
        ("Zed", "I finally bought a bicycle, it is bright orange and very fast."),
        ("Amy", "Nice! I adopted a kitten called Pepper last weekend."),
        ("Zed", "Pepper is a lovely name for a cat."),
        ("Amy", "Thanks, she sleeps all day on the sofa."),
    ])
    session_1[3]["blip_caption"] = "a photo of a small grey kitten on a sofa"
    session_2 = _turns(2, [
        ("Amy", "Guess what, I started learning the cello in March."),
        ("Zed", "Wow, the cello! Is it hard?"),
        ("Amy", "Very hard, my fingers hurt after every lesson."),
        ("Zed", "I rode to the coast on Sunday."),
        ("Amy", "That sounds like a long ride."),
        ("Zed", "Ninety kilometres, my legs are tired."),
    ])
    return {
        "speaker_a": "Zed", "speaker_b": "Amy",
        "session_1_date_time": "1:56 pm on 8 May, 2023", "session_1": session_1,
        "session_2_date_time": "10:37 am on 27 June, 2023", "session_2": session_2,
        "qa": [
            {"question": "What colour is the bicycle Zed bought?", "answer": "orange",
             "evidence": ["D1:3"], "category": 4},
            {"question": "What is the name of Amy's kitten?", "answer": "Pepper",
             "evidence": ["D1:4"], "category": 4},
            {"question": "When did Amy start learning the cello?", "answer": "March 2023",
             "evidence": ["D2:1"], "category": 2},
            {"question": "Where did Zed ride on Sunday and how far?", "answer": "coast, 90 km",
             "evidence": ["D2:4; D2:6"], "category": 1},
            {"question": "Would Amy enjoy a quiet pet?", "answer": "yes",
             "evidence": ["D1:6"], "category": 3},
            {"question": "What did Zed say about his car?", "answer": "nothing",
             "adversarial_answer": "red", "evidence": ["D1:3"], "category": 5},
            {"question": "Does Zed like Amy?", "answer": "unknown", "evidence": [],
             "category": 3},
        ],
    }


def _conversation_two() -> dict[str, object]:
    session_1 = _turns(1, [
        ("Lou", "Morning Kim, the bakery opened a new branch downtown."),
        ("Kim", "I know, their sourdough bread is the best in town."),
        ("Lou", "My brother Theo is moving to Lisbon next month."),
        ("Kim", "Lisbon is beautiful, he will love the tram rides."),
        ("Lou", "He already found a flat near the river."),
        ("Kim", "I am painting a mural of sunflowers for the library."),
    ])
    return {
        "conversation": {
            "speaker_a": "Lou", "speaker_b": "Kim",
            "session_1_date_time": "4:04 pm on 20 January, 2023", "session_1": session_1,
        },
        "qa": [
            {"question": "Which city is Theo moving to?", "answer": "Lisbon",
             "evidence": ["D1:3"], "category": 4},
            {"question": "What is Kim painting for the library?", "answer": "sunflowers",
             "evidence": ["D1:6"], "category": 4},
        ],
    }


@pytest.fixture
def locomo_zip(tmp_path: Path) -> Path:
    path = tmp_path / "locomo-mini.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mini/1.json", json.dumps(_conversation_one()))
        archive.writestr("mini/2.json", json.dumps(_conversation_two()))
        archive.writestr("mini/README.txt", "not a conversation")
    return path


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("memory_locomo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["memory_locomo"] = module
    spec.loader.exec_module(module)
    return module


def test_reader_turns_sessions_into_timed_turns_and_keeps_answerable_questions(
    locomo_zip: Path,
) -> None:
    bench = _module()
    one, two = bench.load(locomo_zip)
    assert (one.name, two.name) == ("1", "2")
    assert [t.dia_id for t in one.turns][:2] == ["D1:1", "D1:2"] and len(one.turns) == 12
    assert one.turns[3].text == ("Amy: Nice! I adopted a kitten called Pepper last weekend. "
                                 "[shares a photo of a small grey kitten on a sofa]")
    assert one.turns[0].created_at == 1683554160.0  # 2023-05-08 13:56 UTC
    assert one.turns[1].created_at - one.turns[0].created_at == bench.TURN_SECONDS
    assert one.turns[6].created_at == 1687862220.0  # session 2
    # category 5 is left out, an empty evidence list is skipped, "D2:4; D2:6" is two turns
    assert len(one.questions) == 5 and one.skipped == 1
    multi = next(q for q in one.questions if q.category == 1)
    assert multi.evidence == frozenset({"D2:4", "D2:6"})
    assert len(two.questions) == 2 and two.turns[0].speaker == "Lou"


def test_tally_scores_recall_and_any_at_k() -> None:
    bench = _module()
    tally = bench.Tally((1, 3))
    tally.add(4, ["a", "b", "c"], frozenset({"a"}))
    tally.add(1, ["x", "b", "c"], frozenset({"b", "z"}))
    assert tally.summary() == {"recall@1": 0.5, "recall@3": 0.75, "any@1": 0.5, "any@3": 1.0}
    assert tally.summary(1) == {"recall@1": 0.0, "recall@3": 0.5, "any@1": 0.0, "any@3": 1.0}
    assert tally.summary(2)["recall@1"] is None


@pytest.mark.slow
def test_benchmark_runs_on_a_tiny_dataset_and_prints_its_json(
    locomo_zip: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PERSONAE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--data", str(locomo_zip), "--k", "1,5", "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any("personae" in line and "overall" in line for line in lines[:-1])
    result = json.loads(lines[-1])
    assert set(result) == {"methods", "questions"} and result["questions"] == 7
    assert set(result["methods"]) == {"personae", "dense", "bm25"}
    metrics = {"recall@1", "recall@5", "any@1", "any@5"}
    for method in result["methods"].values():
        assert set(method) == {"overall", "by_category"}
        assert set(method["overall"]) == metrics
        assert set(method["by_category"]) == {"1", "2", "3", "4"}
        for values in [method["overall"], *method["by_category"].values()]:
            assert set(values) == metrics
            assert all(0.0 <= v <= 1.0 for v in values.values())
    # Each single-hop question names words only its evidence turn holds.
    single_hop = result["methods"]["personae"]["by_category"]["4"]
    assert single_hop["recall@1"] == 1.0 and single_hop["any@5"] == 1.0


def test_benchmark_without_data_says_where_it_looked(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.zip"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--data", str(missing)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert str(missing) in proc.stderr and "--data" in proc.stderr
