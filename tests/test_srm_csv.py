"""SRMEval CSV layout: round trip, encodings, clear errors, and a property test of the reader."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from similar_rl.data.records import PairRecord
from similar_rl.data.srm_csv import (
    COLUMNS,
    format_reason_steps,
    parse_reason_steps,
    read_srm_csv,
    task_id_for,
    write_srm_csv,
)
from similar_rl.dimensions import PAIR_TYPES

HEADER = ",".join(COLUMNS)


def pair(i: int, ptype: str = "helpfulness", **kw) -> PairRecord:
    base = dict(
        pair_id=f"p{i}",
        type=ptype,
        task_id=task_id_for("Click, then \"type\" 'é'"),
        env_id="srmeval",
        instruction="Click, then \"type\" 'é'",
        chosen=f"click(ref={i})",
        rejected='type(ref=2, text="a,b\\n")',
        step_idx=i,
        history=["noop()", 'type(ref=1, text="x")'],
        screenshot=f"images/{i}.png",
    )
    base.update(kw)
    return PairRecord(**base)


def test_round_trip_export_import_export(tmp_path):
    pairs = [pair(i, t) for i, t in enumerate(PAIR_TYPES)]
    pairs.append(pair(9, "traj", chosen="click(ref=1)\nclick(ref=2)", history=[], screenshot=None))
    first = tmp_path / "a.csv"
    write_srm_csv(pairs, first)
    text = first.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER
    assert [row[3] for row in list(csv.reader(io.StringIO(text)))[1:6]] == ["TC", "IP", "E", "TR", "C"]
    back = read_srm_csv(first)
    assert [p.to_dict() for p in back] == [p.to_dict() for p in pairs]
    second = tmp_path / "b.csv"
    write_srm_csv(back, second)
    assert second.read_bytes() == first.read_bytes()


def test_reason_steps():
    history = ["click(ref=1)", 'press(key="Enter")']
    text = format_reason_steps(history)
    assert text == 'Step 1 : click(ref=1)\nStep 2 : press(key="Enter")'
    assert parse_reason_steps(text) == history
    assert parse_reason_steps("Step 1: a\nStep 2 :b\r\n  more") == ["a", "b\n  more"]
    assert parse_reason_steps("  ") == []
    with pytest.raises(ValueError, match="must start with 'Step 1"):
        parse_reason_steps("clicked OK")


def test_encodings(tmp_path):
    body = f"{HEADER}\r\nx1,1,Öffne Menü,TR,Step 1 : noop(),img.png,click(ref=1),noop()\r\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    (tmp_path / "plain.csv").write_bytes(body.encode("utf-8"))
    a, b = read_srm_csv(tmp_path / "bom.csv"), read_srm_csv(tmp_path / "plain.csv")
    assert a == b and a[0].instruction == "Öffne Menü" and a[0].type == "task_relevance"
    assert a[0].screenshot == "img.png" and a[0].history == ["noop()"]
    assert read_srm_csv(io.BytesIO(body.encode("utf-8"))) == a
    (tmp_path / "latin.csv").write_bytes(body.encode("latin-1"))
    with pytest.raises(
        ValueError, match=r"latin\.csv could not be decoded \(tried utf-8-sig, gb18030: .*--encoding"
    ):
        read_srm_csv(tmp_path / "latin.csv")
    assert read_srm_csv(tmp_path / "latin.csv", encoding="latin-1") == a
    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        read_srm_csv(tmp_path / "latin.csv", encoding="klingon")


def test_the_authors_gb2312_files_are_read(tmp_path, capsys):
    from similar_rl.cli import main

    chinese = f"{HEADER}\r\nx1,1,打开设置菜单,TR,Step 1 : noop(),,click(ref=1),noop()\r\n"
    (tmp_path / "gb.csv").write_bytes(chinese.encode("gb2312"))
    pairs = read_srm_csv(tmp_path / "gb.csv")  # detected
    assert pairs[0].instruction == "打开设置菜单"
    assert read_srm_csv(tmp_path / "gb.csv", encoding="gb2312") == pairs
    assert main(["eval", "--data", str(tmp_path / "gb.csv"), "--encoding", "gb2312"]) == 0
    assert "task_relevance" in capsys.readouterr().out


def test_clear_errors():
    with pytest.raises(ValueError, match=r"misses column\(s\) \['reason_steps', 'image_url'\]"):
        read_srm_csv(io.StringIO("id,step_idx,instruction,type,chosen,rejected\n"))
    rows = f"{HEADER}\nx1,1,Go,TC,,,a,b\nx2,2,Go,HELP,,,a,b\n"
    with pytest.raises(ValueError, match=r"row 2 has unknown type 'HELP'"):
        read_srm_csv(io.StringIO(rows))
    with pytest.raises(ValueError, match=r"row 1: step_idx must be an integer, got 'two'"):
        read_srm_csv(io.StringIO(f"{HEADER}\nx1,two,Go,TC,,,a,b\n"))
    with pytest.raises(ValueError, match=r"row 1 has 4 fields but the header has 8"):
        read_srm_csv(io.StringIO(f"{HEADER}\nx1,1,Go,TC\n"))
    with pytest.raises(ValueError, match="is empty"):
        read_srm_csv(io.StringIO(""))
    # extra columns are allowed; the full key names work as types too
    extra = read_srm_csv(io.StringIO(f"{HEADER},note\nx1,1,Go,efficiency,,,a,b,hi\n"))
    assert extra[0].type == "efficiency" and extra[0].screenshot is None


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
_action = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=20
)


@settings(max_examples=100, deadline=None)
@given(
    ident=_text.filter(lambda s: s.strip() != ""),
    step_idx=st.integers(0, 10_000),
    instruction=_text,
    ptype=st.sampled_from(PAIR_TYPES),
    history=st.lists(_action, max_size=4),
    image=_text,
    chosen=_text,
    rejected=_text,
)
def test_property_round_trip(ident, step_idx, instruction, ptype, history, image, chosen, rejected):
    p = PairRecord(
        pair_id=ident,
        type=ptype,
        task_id=task_id_for(instruction),
        env_id="srmeval",
        instruction=instruction,
        chosen=chosen,
        rejected=rejected,
        step_idx=step_idx,
        history=history,
        screenshot=image or None,
    )
    buf = io.StringIO()
    write_srm_csv([p], buf)
    (back,) = read_srm_csv(io.BytesIO(buf.getvalue().encode("utf-8")))
    # a history item that is only whitespace-free text round-trips; "Step k :" parsing keeps inner spaces
    assert back.to_dict() == p.to_dict()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: f"{HEADER}\n{t}".encode()))
def test_property_reader_only_raises_value_error(data):
    try:
        pairs = read_srm_csv(io.BytesIO(data))
    except ValueError:
        return
    for p in pairs:
        assert p.type in PAIR_TYPES and isinstance(p.step_idx, int)
