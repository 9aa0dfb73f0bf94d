"""JSON Lines query logs: parsing, and errors that name the file and line."""

from __future__ import annotations

import numpy as np
import pytest

from mlwarden.exceptions import DataFileError
from mlwarden.theft.querylog import iter_queries, read_query_log, write_query_log


def test_round_trip(tmp_path):
    path = write_query_log(
        tmp_path / "q.jsonl",
        [("a", np.array([1.0, 2.5]), np.int64(1)), (7, [0, -1e-300], None), ("b", [3, 4], "yes")],
    )
    queries = list(read_query_log(path))
    assert [q.client for q in queries] == ["a", "7", "b"]
    assert [q.label for q in queries] == [1, None, "yes"]
    assert [q.line for q in queries] == [1, 2, 3]
    np.testing.assert_array_equal(queries[1].x, [0.0, -1e-300])
    assert queries[0].x.dtype == np.float64


def test_blank_lines_extra_keys_and_timestamps_are_fine():
    lines = ['{"client": "a", "x": [1, 2], "ts": 17.5, "ip": "10.0.0.1"}', "", "  "]
    lines.append('{"client": "a", "x": [3, 4], "label": false}')
    queries = list(iter_queries(lines, source="log"))
    assert [q.line for q in queries] == [1, 4]
    assert queries[0].ts == 17.5 and queries[1].label is False


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"x": [1, 2]}', "missing field 'client'"),
        ('{"client": "a"}', "missing field 'x'"),
        ('{"client": "", "x": [1, 2]}', "'client' is empty"),
        ('{"client": 1.5, "x": [1, 2]}', "'client' must be"),
        ('{"client": "a", "x": "1,2"}', "'x' must be a non-empty list"),
        ('{"client": "a", "x": [1, "2"]}', r"'x'\[1\] must be a finite number"),
        ('{"client": "a", "x": [1, NaN]}', r"'x'\[1\] must be a finite number"),
        ('{"client": "a", "x": [1, 2, 3]}', "has 3 features, expected 2"),
        ('{"client": "a", "x": [1, 2], "label": [1]}', "'label' must be"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "q.jsonl"
    path.write_text('{"client": "ok", "x": [0, 0]}\n\n' + line + "\n")
    with pytest.raises(DataFileError, match=message) as info:
        list(read_query_log(path))
    assert str(info.value).startswith(f"{path}, line 3: ")


def test_expected_feature_count_and_file_errors(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"client": "ok", "x": [0, 0]}\n')
    with pytest.raises(DataFileError, match="line 1: 'x' has 2 features, expected 5"):
        list(read_query_log(path, n_features=5))
    with pytest.raises(DataFileError, match="no such file"):
        list(read_query_log(tmp_path / "missing.jsonl"))
    with pytest.raises(DataFileError, match="is a directory"):
        list(read_query_log(tmp_path))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        list(read_query_log(binary))
