"""The suite's own scheduling (tests/conftest.py, issue 9): under ``pytest -n``
the longest items head the workers' first chunks, heaviest first, each to the
worker with the least weight so far, and nothing is added or lost."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import LONGEST, first_chunks

ROOT = Path(__file__).resolve().parents[1]


def test_the_heavy_items_head_the_first_chunks_and_nothing_is_lost():
    ids = [f"t{i}" for i in range(40)]
    weights = {"t30": 10, "t31": 5, "t2": 4, "t39": 3, "gone": 99}
    out = first_chunks(ids, 2, 5, weights)
    assert sorted(out) == sorted(ids)                 # a permutation: none added, none lost
    # worker 0's first chunk is out[0:5], worker 1's out[5:10]
    assert out[:5] == ["t30", "t0", "t1", "t3", "t4"]     # 10
    assert out[5:10] == ["t31", "t2", "t39", "t5", "t6"]  # 5 + 4 + 3
    rest = [i for i in out if i not in weights]
    assert rest == [i for i in ids if i not in weights]   # the others keep their order


def test_more_heavy_items_than_a_chunk_holds_are_kept():
    ids = [f"t{i}" for i in range(6)]
    out = first_chunks(ids, 2, 2, {i: 1 for i in ids})
    assert sorted(out) == sorted(ids)


def test_every_listed_item_names_a_test_of_the_suite():
    """A renamed test would silently lose its place: each id's file must
    define its function."""
    for nodeid in LONGEST:
        path, name = re.fullmatch(r"(tests/[\w/]+\.py)::(\w+)(\[.*\])?", nodeid).group(1, 2)
        source = (ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), nodeid
