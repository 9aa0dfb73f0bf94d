"""Dataset manifests: signing, verification, locating changed rows, bad inputs."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlwarden.data import fraud, write_table
from mlwarden.data.manifest import (
    DataVerifyResult,
    diff_rows,
    generate_data_key,
    manifest_finding,
    merkle_root,
    row_digests,
    sign_dataset,
    verify_dataset,
)
from mlwarden.exceptions import DataError, DataFileError, InvalidParameterError

Row = tuple[int | None, str]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("keys")
    out = {n: root / n for n in ("key", "key.pub", "other", "other.pub")}
    generate_data_key(out["key"], out["key.pub"])
    generate_data_key(out["other"], out["other.pub"])
    return out


def write_rows(path: Path, rows: list[Row]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["n", "text"])
        for n, t in rows:
            w.writerow(["" if n is None else n, t])
    return path


def signed_and_current(
    tmp: Path, keys: dict[str, Path], before: list[Row], after: list[Row]
) -> DataVerifyResult:
    data = write_rows(tmp / "data.csv", before)
    sign_dataset(data, key=keys["key"])
    write_rows(data, after)
    return verify_dataset(data, key=keys["key.pub"])


BASE: list[Row] = [(i, f"row {i}") for i in range(12)]


# ----------------------------------------------------------------- merkle tree
def _rfc6962(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, recursively (the obviously correct reference)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:k]) + _rfc6962(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33])
def test_merkle_root_equals_the_rfc6962_recursion(n: int) -> None:
    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(n)]
    assert merkle_root(leaves) == _rfc6962(leaves)


# --------------------------------------------------------------- round trips
def test_sign_then_verify_csv(tmp_path: Path, keys: dict[str, Path]) -> None:
    data = write_rows(tmp_path / "d.csv", BASE)
    res = sign_dataset(data, key=keys["key"])
    assert res.manifest == tmp_path / "d.csv.manifest.json"
    assert res.rows == 12 and res.columns == ["n", "text"] and res.warnings == []
    doc = json.loads(res.manifest.read_text())
    assert doc["schema"] == [{"name": "n", "type": "int64"}, {"name": "text", "type": "string"}]
    assert doc["rows"] == 12 and doc["signer"]["algorithm"] == "ed25519"
    assert doc["signer"]["key_fingerprint"] == res.key_fingerprint
    assert len(base64.b64decode(doc["row_hashes"]["data"])) == 12 * 8
    out = verify_dataset(data, key=keys["key.pub"])
    assert out.ok and out.reason == "verified" and out.exit_code == 0
    assert out.rows_now == 12 and out.diff.empty


def test_reformatting_without_changing_values_still_verifies(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1.50,x\n2,y\n")
    sign_dataset(data, key=keys["key"])
    data.write_text('"a","b"\r\n1.5,"x"\r\n2.0,y\r\n')
    assert verify_dataset(data, key=keys["key.pub"]).ok


def test_fraud_csv_verifies_as_parquet_and_gzip(tmp_path: Path, keys: dict[str, Path]) -> None:
    ds = fraud(300, random_state=1)
    csv_path = write_table(ds, tmp_path / "f.csv", label="is_fraud")
    pq_path = write_table(ds, tmp_path / "f.parquet", label="is_fraud")
    gz_path = write_table(ds, tmp_path / "f.tsv.gz", label="is_fraud")
    res = sign_dataset(csv_path, key=keys["key"], chunk_rows=64)
    for p in (csv_path, pq_path, gz_path):
        out = verify_dataset(p, manifest=res.manifest, key=keys["key.pub"])
        assert out.ok, out.message


def test_in_memory_tables(tmp_path: Path, keys: dict[str, Path]) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    res = sign_dataset(frame, key=keys["key"], out=tmp_path / "m.json")
    assert verify_dataset(frame, manifest=res.manifest, key=keys["key.pub"]).ok
    changed = frame.copy()
    changed.loc[1, "b"] = ""
    out = verify_dataset(changed, manifest=res.manifest, key=keys["key.pub"])
    assert not out.ok and out.diff.changed == [(1, 1)]
    with pytest.raises(InvalidParameterError, match="out"):
        sign_dataset(frame, key=keys["key"])


def test_row_encoding_is_unambiguous() -> None:
    # the same characters split differently between fields, and null vs empty vs "N"
    a = pd.DataFrame({"x": ["ab", "a", None, "", "N"], "y": ["c", "bc", "", None, None]})
    digests = row_digests(a)
    assert len(set(digests)) == 5
    # NaN and null are both "missing"; 0.0 and -0.0 are different values
    f = pd.DataFrame({"v": [np.nan, None, 0.0, -0.0]}, dtype="float64")
    d = row_digests(f)
    assert d[0] == d[1] and d[2] != d[3]


# ------------------------------------------------------------ locating changes
def test_single_change_is_named(tmp_path: Path, keys: dict[str, Path]) -> None:
    after = list(BASE)
    after[5] = (5, "row five")
    out = signed_and_current(tmp_path, keys, BASE, after)
    assert not out.ok and out.reason == "modified" and out.exit_code == 1
    assert out.diff.changed == [(5, 5)]
    assert not (out.diff.inserted or out.diff.removed or out.diff.moved)
    assert "changed rows 5" in out.message
    assert out.changed_chunks == [0]


def test_insert_delete_and_swap_are_named(tmp_path: Path, keys: dict[str, Path]) -> None:
    ins = [*BASE[:3], (99, "new"), *BASE[3:]]
    out = signed_and_current(tmp_path, keys, BASE, ins)
    assert out.diff.inserted == [3] and out.rows_now == 13
    out = signed_and_current(tmp_path, keys, BASE, BASE[:7] + BASE[8:])
    assert out.diff.removed == [7] and "removed signed rows 7" in out.message
    swapped = list(BASE)
    swapped[2], swapped[9] = swapped[9], swapped[2]
    out = signed_and_current(tmp_path, keys, BASE, swapped)
    assert out.diff.moved == [(2, 9), (9, 2)]
    assert not (out.diff.changed or out.diff.inserted or out.diff.removed)


def test_a_value_that_changes_the_column_type_names_only_its_row(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    data = tmp_path / "d.csv"
    data.write_text("id,amount\n" + "".join(f"{i},{i * 1.5}\n" for i in range(50)))
    sign_dataset(data, key=keys["key"])
    lines = data.read_text().splitlines()
    lines[31] = "30,abc"  # row 30: a number becomes text
    lines[11] = "10.5,15.0"  # row 10: an integer id becomes a fraction
    data.write_text("\n".join(lines) + "\n")
    out = verify_dataset(data, key=keys["key.pub"])
    assert not out.ok
    assert sorted(out.diff.changed) == [(10, 10), (30, 30)]
    assert not (out.diff.inserted or out.diff.removed or out.diff.moved)


def test_schema_changes_are_reported(tmp_path: Path, keys: dict[str, Path]) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0.5, 1.5, 2.5]})
    data = tmp_path / "d.parquet"
    frame.to_parquet(data)
    res = sign_dataset(data, key=keys["key"])

    def verify(f: pd.DataFrame) -> DataVerifyResult:
        f.to_parquet(data)
        return verify_dataset(data, manifest=res.manifest, key=keys["key.pub"])

    out = verify(frame.assign(d=[1, 1, 1]))
    assert not out.ok and out.schema_changes == ["column 'd' added (int64)"]
    assert out.rows_compared and out.diff.empty
    out = verify(frame.rename(columns={"b": "label"}))
    assert out.schema_changes == ["column 'b' renamed to 'label'"] and out.diff.empty
    out = verify(frame.drop(columns=["c"]))
    assert out.schema_changes == ["column 'c' removed"] and not out.rows_compared
    assert "rows not compared" in out.message
    out = verify(frame.astype({"a": "int32"}))
    assert out.schema_changes == ["column 'a' changed type: int64 -> int32"]
    assert out.diff.empty  # the values are the same
    out = verify(frame[["c", "a", "b"]])
    assert out.schema_changes[0].startswith("columns reordered") and out.diff.empty


# ------------------------------------------------------------- property tests
rows_st = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 3)), st.sampled_from(["a", "b", "c d", "é", "1"])
    ),
    min_size=1,
    max_size=25,
)


@st.composite
def edits(draw: st.DrawFn) -> tuple[list[Row], str, list[Row], tuple[int, ...]]:
    rows = draw(rows_st)
    kind = draw(st.sampled_from(["change", "insert", "delete", "swap"]))
    new = draw(rows_st.map(lambda r: r[0]))
    after = list(rows)
    if kind == "change":
        i = draw(st.integers(0, len(rows) - 1))
        if new == rows[i]:
            new = (None if new[0] is not None else 0, new[1])
        after[i] = new
        return rows, kind, after, (i,)
    if kind == "insert":
        j = draw(st.integers(0, len(rows)))
        after.insert(j, new)
        return rows, kind, after, (j,)
    if kind == "delete" and len(rows) > 1:
        i = draw(st.integers(0, len(rows) - 1))
        del after[i]
        return rows, kind, after, (i,)
    if len(rows) < 2 or len(set(rows)) < 2:
        after.append(new)
        return rows, "insert", after, (len(rows),)
    pairs = [
        (i, j) for i in range(len(rows)) for j in range(i + 1, len(rows)) if rows[i] != rows[j]
    ]
    i, j = draw(st.sampled_from(pairs))
    after[i], after[j] = after[j], after[i]
    return rows, "swap", after, (i, j)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits())
def test_any_single_row_edit_is_detected_and_located(
    keys: dict[str, Path], case: tuple[list[Row], str, list[Row], tuple[int, ...]]
) -> None:
    before, kind, after, where = case
    with tempfile.TemporaryDirectory() as tmp:
        out = signed_and_current(Path(tmp), keys, before, after)
    d = out.diff
    assert not out.ok
    if kind == "change":
        assert d.changed == [(where[0], where[0])]
        assert not (d.inserted or d.removed or d.moved)
    elif kind == "insert":
        (j,), (r,) = where, d.inserted
        lo, hi = min(j, r), max(j, r)
        assert all(after[k] == after[j] for k in range(lo, hi + 1))  # an equal row
        assert not (d.changed or d.removed or d.moved)
    elif kind == "delete":
        (i,), (r,) = where, d.removed
        lo, hi = min(i, r), max(i, r)
        assert all(before[k] == before[i] for k in range(lo, hi + 1))
        assert not (d.changed or d.inserted or d.moved)
    else:
        i, j = where
        named = {a for a, _ in d.changed} | set(d.removed) | {a for a, _ in d.moved}
        named |= {b for _, b in d.changed} | set(d.inserted) | {b for _, b in d.moved}
        assert named and named <= set(range(i, j + 1))
        assert d.moved or d.changed


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2500, 4000),
    st.sampled_from(["change", "insert", "delete", "swap"]),
    st.data(),
)
def test_diff_locates_edits_in_long_tables(n: int, kind: str, data: st.DataObject) -> None:
    rng = np.random.default_rng(n)
    a = rng.permutation(10 * n)[:n].astype(np.uint64) + 1
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda k: k != i))
    b = a.copy()
    if kind == "change":
        b[i] = 0
        assert diff_rows(a, b).changed == [(i, i)]
    elif kind == "insert":
        assert diff_rows(a, np.insert(a, i, 0)).inserted == [i]
    elif kind == "delete":
        assert diff_rows(a, np.delete(a, i)).removed == [i]
    else:
        b[i], b[j] = a[j], a[i]
        d = diff_rows(a, b)
        lo, hi = min(i, j), max(i, j)
        assert not (d.changed or d.inserted or d.removed)
        assert {x for pair in d.moved for x in pair} <= {lo, hi} and d.moved


def test_diff_of_many_scattered_edits() -> None:
    a = np.arange(1, 20001, dtype=np.uint64)
    b = a.copy()
    b[::1000] = 0  # 20 changed rows far apart
    d = diff_rows(a, b)
    assert d.changed == [(i, i) for i in range(0, 20000, 1000)]


# ------------------------------------------------------------------- bad input
def test_a_manifest_signed_with_another_key_fails_clearly(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    data = write_rows(tmp_path / "d.csv", BASE)
    sign_dataset(data, key=keys["other"])
    out = verify_dataset(data, key=keys["key.pub"])
    assert not out.ok and out.reason == "invalid-signature"
    assert "signature does not match key" in out.message
    assert out.signed_by != out.key_fingerprint and str(out.signed_by) in out.message


def test_an_edited_manifest_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    data = write_rows(tmp_path / "d.csv", BASE)
    res = sign_dataset(data, key=keys["key"])
    doc = json.loads(res.manifest.read_text())
    write_rows(data, BASE[:-1])
    doc["rows"] = 11  # hide the removed row
    res.manifest.write_text(json.dumps(doc))
    out = verify_dataset(data, key=keys["key.pub"])
    assert out.reason == "invalid-signature" and "altered after signing" in out.message


def test_bad_inputs_get_clear_errors(tmp_path: Path, keys: dict[str, Path]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match=r"empty\.csv: empty file"):
        sign_dataset(empty, key=keys["key"])
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataFileError, match="no data rows"):
        sign_dataset(header, key=keys["key"])
    with pytest.raises(DataFileError, match=r"missing\.csv: file not found"):
        sign_dataset(tmp_path / "missing.csv", key=keys["key"])
    data = write_rows(tmp_path / "d.csv", BASE)
    with pytest.raises(InvalidParameterError, match=r"nokey.*not found"):
        sign_dataset(data, key=tmp_path / "nokey")
    with pytest.raises(InvalidParameterError, match="this is a public key"):
        sign_dataset(data, key=keys["key.pub"])
    with pytest.raises(DataFileError, match="manifest not found"):
        verify_dataset(data, key=keys["key.pub"])
    with pytest.raises(DataFileError, match="not a mlwarden dataset manifest"):
        verify_dataset(data, manifest=data, key=keys["key.pub"])
    with pytest.raises(InvalidParameterError, match="this is a private key"):
        verify_dataset(data, manifest=data, key=keys["key"])
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(DataFileError, match=r"bad\.csv: cannot parse as CSV"):
        sign_dataset(bad, key=keys["key"])
    with pytest.raises(DataFileError, match="unsupported file type"):
        sign_dataset(keys["key.pub"], key=keys["key"])
    with pytest.raises(InvalidParameterError, match="already exists"):
        generate_data_key(keys["key"], tmp_path / "new.pub")


def test_mixed_types_are_reported_not_fatal(tmp_path: Path, keys: dict[str, Path]) -> None:
    data = tmp_path / "mixed.csv"
    data.write_text("id,amount\n" + "".join(f"{i},{i}.5\n" for i in range(20)) + "20,n/a!\n")
    res = sign_dataset(data, key=keys["key"])
    assert len(res.warnings) == 1
    assert "column 'amount' mixes numbers and text" in res.warnings[0]
    assert "'n/a!' at row 20" in res.warnings[0]
    assert verify_dataset(data, key=keys["key.pub"]).ok
    frame = pd.DataFrame({"v": [1, "two", 3.0]}, dtype=object)
    with pytest.raises(DataError, match=r"column 'v' mixes value types \(float, int, str\)"):
        sign_dataset(frame, key=keys["key"], out=tmp_path / "m.json")


def test_manifest_finding(tmp_path: Path, keys: dict[str, Path]) -> None:
    after = list(BASE)
    after[1] = (None, "x")
    out = signed_and_current(tmp_path, keys, BASE, after)
    f = manifest_finding(out, target="train.csv")
    assert f.rule_id == "MLW-DAT-003" and not f.passed and f.value == 0.0
    assert "AML.T0020" in f.atlas and "ML02" in f.owasp
    assert f.evidence["rows"]["changed"] == [{"signed_row": 1, "row": 1}]


def test_both_row_layouts_give_the_same_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlwarden.data.manifest as manifest

    frame = pd.DataFrame(
        {
            "a": [1, None, 3, 4],
            "t": ["x", "a much longer text value " * 20, None, ""],
            "u": ["é", "b", "c", None],
            "f": [0.5, 1.5, np.nan, 2.0],
        }
    )
    padded = row_digests(frame)
    monkeypatch.setattr(manifest, "_PADDED_BYTES", 0)  # back-to-back rows instead
    assert row_digests(frame) == padded
    assert len(set(padded)) == 4


def test_digest_of_a_row_is_sha256_of_its_documented_encoding() -> None:
    frame = pd.DataFrame({"n": [7], "t": ["hé"]})
    (digest,) = row_digests(frame)
    text = "hé".encode()
    encoding = (7).to_bytes(8, "big") + len(text).to_bytes(8, "big") + b"I" + b"S" + text
    assert digest == hashlib.sha256(encoding).digest()


def test_text_after_the_first_csv_block_is_read_as_text(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlwarden.data.manifest as manifest

    monkeypatch.setattr(manifest, "_CSV_BLOCK", 1 << 10)  # types are inferred on 1 KB
    data = tmp_path / "late.csv"
    body = "".join(f"{i},{i}\n" for i in range(400))
    data.write_text("id,v\n" + body + "400,late text\n")
    res = sign_dataset(data, key=keys["key"])
    assert len(res.warnings) == 1 and "column 'v' mixes numbers and text" in res.warnings[0]
    assert "late text" in res.warnings[0]
    assert verify_dataset(data, key=keys["key.pub"]).ok
    data.write_text("id,v\n" + body.replace("\n17,17\n", "\n17,18\n") + "400,late text\n")
    assert verify_dataset(data, key=keys["key.pub"]).diff.changed == [(17, 17)]
