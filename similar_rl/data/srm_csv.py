"""Read and write the authors' SRMEval CSV layout.

Columns: ``id, step_idx, instruction, type, reason_steps, image_url, chosen, rejected``. ``type`` uses the
reference aliases (IP, E, TC, TR, C, total, traj; see :func:`similar_rl.dimensions.from_alias`) and
``reason_steps`` is the history, one ``Step k : <action>`` line per previous action (k from 1).

Importing gives :class:`~similar_rl.data.records.PairRecord` rows (``image_url`` kept as the ``screenshot``
path; ``task_id`` is a hash of the instruction, since the layout has no task column). Exporting writes the
same layout, so export -> import -> export is the identity.

Example:
    >>> import io
    >>> from similar_rl.data.records import PairRecord
    >>> pair = PairRecord(pair_id="p1", type="helpfulness", task_id="t", env_id="toy/a", instruction="Click OK",
    ...                   chosen="click(ref=2)", rejected="click(ref=3)", step_idx=2, history=["noop()"])
    >>> buf = io.StringIO()
    >>> write_srm_csv([pair], buf)
    >>> print(buf.getvalue().splitlines()[1])
    p1,2,Click OK,TC,Step 1 : noop(),,click(ref=2),click(ref=3)
    >>> read_srm_csv(io.StringIO(buf.getvalue()))[0].history
    ['noop()']
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from similar_rl.data.records import PairRecord
from similar_rl.dimensions import from_alias, to_alias

logger = logging.getLogger(__name__)

COLUMNS = ("id", "step_idx", "instruction", "type", "reason_steps", "image_url", "chosen", "rejected")
_STEP_LINE = re.compile(r"^Step\s*(\d+)\s*:\s?(.*)$", re.DOTALL)


def format_reason_steps(history: Iterable[str]) -> str:
    """The history as ``Step k : <action>`` lines.

    Example:
        >>> format_reason_steps(["click(ref=1)", 'type(ref=2, text="a")'])
        'Step 1 : click(ref=1)\\nStep 2 : type(ref=2, text="a")'
    """
    return "\n".join(f"Step {k} : {action}" for k, action in enumerate(history, start=1))


def parse_reason_steps(text: str) -> list[str]:
    """Inverse of :func:`format_reason_steps`. A line not starting with ``Step k :`` continues the previous step.

    Raises:
        ValueError: the text is not empty but does not start with a ``Step k :`` line.
    """
    if not text.strip():
        return []
    steps: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        match = _STEP_LINE.match(line)
        if match:
            steps.append(match.group(2))
        elif steps:
            steps[-1] += "\n" + line
        else:
            raise ValueError(f"reason_steps must start with 'Step 1 : <action>', got {line[:60]!r}")
    return steps


def task_id_for(instruction: str) -> str:
    """The task id given to imported rows: a hash of the instruction (same instruction, same task)."""
    return "srm-" + hashlib.blake2b(instruction.encode("utf-8"), digest_size=8).hexdigest()


#: Encodings tried in turn when none is given: UTF-8 (a BOM is dropped), then GB18030, the superset of the
#: GB2312 that the authors' SRMEval files are written in. UTF-8 is tried first because text in another
#: encoding almost never decodes as UTF-8; the reverse is not true, so other encodings must be named.
AUTO_ENCODINGS = ("utf-8-sig", "gb18030")


def _open_text(
    source: str | os.PathLike[str] | IO[str] | IO[bytes], encoding: str | None = None
) -> tuple[str, str]:
    """(text, name) of a path or file object, decoded with ``encoding`` or the first of :data:`AUTO_ENCODINGS`
    that decodes it; a clear error naming the encodings tried when none does."""
    if isinstance(source, (str, os.PathLike)):
        name, data = str(source), Path(source).read_bytes()
    else:
        name, data = str(getattr(source, "name", "<stream>")), source.read()
    if isinstance(data, str):
        return data.removeprefix("\ufeff"), name
    tried = [encoding] if encoding else list(AUTO_ENCODINGS)
    problems = []
    for codec in tried:
        try:
            text = data.decode(codec)
        except LookupError:
            raise ValueError(f"unknown encoding {codec!r} (try utf-8, gb18030, gb2312 or latin-1)") from None
        except UnicodeDecodeError as exc:
            problems.append(f"{codec}: undecodable byte at offset {exc.start}")
            continue
        if codec != tried[0]:
            logger.warning("%s is not UTF-8; read it as %s", name, codec)
        return text.removeprefix("\ufeff"), name
    raise ValueError(
        f"{name} could not be decoded (tried {', '.join(tried)}: {'; '.join(problems)}); pass its encoding, "
        "e.g. --encoding latin-1"
    )


def read_srm_csv(
    source: str | os.PathLike[str] | IO[str] | IO[bytes], env_id: str = "srmeval", encoding: str | None = None
) -> list[PairRecord]:
    """Import an SRMEval-layout CSV as pair records.

    Args:
        source: a path, or a text or binary file object.
        env_id: the env id given to every row (the layout has none).
        encoding: the file's text encoding (default: UTF-8 with or without BOM, else GB18030/GB2312).

    Raises:
        ValueError: undecodable (naming the encodings tried), missing columns (named), or a bad row (named by
            its row number, 1 = first data row, and the field).
    """
    text, name = _open_text(source, encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise ValueError(f"{name}: unreadable CSV header ({exc})") from None
    if not header:
        raise ValueError(f"{name} is empty; expected a header with columns {list(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{name} misses column(s) {missing}; the SRMEval layout has {list(COLUMNS)}")
    pairs = []
    row_number = 0
    try:
        for row_number, row in enumerate(reader, start=1):
            pairs.append(_row_to_pair(row, row_number, name, env_id))
    except csv.Error as exc:
        raise ValueError(f"{name}: row {row_number + 1} is not valid CSV ({exc})") from None
    return pairs


def _row_to_pair(row: dict[str, str | None], number: int, name: str, env_id: str) -> PairRecord:
    where = f"{name}: row {number}"
    if None in row or any(row.get(c) is None for c in COLUMNS):
        n_fields = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
        raise ValueError(f"{where} has {n_fields} fields but the header has {len(row) - (None in row)}")
    values = {c: str(row[c]) for c in COLUMNS}
    try:
        pair_type = from_alias(values["type"].strip())
    except ValueError:
        raise ValueError(
            f"{where} has unknown type {values['type']!r}; expected one of IP, E, TC, TR, C, total, traj"
        ) from None
    try:
        step_idx = int(values["step_idx"].strip() or 0)
    except ValueError:
        raise ValueError(f"{where}: step_idx must be an integer, got {values['step_idx']!r}") from None
    try:
        history = parse_reason_steps(values["reason_steps"])
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if not values["id"].strip():
        raise ValueError(f"{where}: id is empty")
    return PairRecord(
        pair_id=values["id"],
        type=pair_type,
        task_id=task_id_for(values["instruction"]),
        env_id=env_id,
        instruction=values["instruction"],
        chosen=values["chosen"],
        rejected=values["rejected"],
        step_idx=step_idx,
        history=history,
        screenshot=values["image_url"] or None,
    )


def write_srm_csv(pairs: Iterable[PairRecord], target: str | os.PathLike[str] | IO[str]) -> None:
    """Export pair records in the SRMEval layout (UTF-8, no BOM, ``\\r\\n`` row ends as spreadsheets write them)."""
    is_path = isinstance(target, (str, os.PathLike))
    with open(target, "w", encoding="utf-8", newline="") if is_path else contextlib.nullcontext(target) as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for p in pairs:
            alias, history, image = to_alias(p.type), format_reason_steps(p.history), p.screenshot or ""
            writer.writerow(
                [p.pair_id, p.step_idx, p.instruction, alias, history, image, p.chosen, p.rejected]
            )
