"""Glue's labeling file format: the rules a labels file must meet, and a labeling set's records.

From the Glue developer guide ("Labeling file format", "Machine learning exceptions") and
StartImportLabelsTaskRun's limits: CSV, UTF-8 without a byte-order mark, at most 10 MB; the
columns ``labeling_set_id,label`` and then the source's columns as the labeling set has them;
records of one entity share a label within their set, and labels mean nothing across sets.
The import's check, the labeling task and the labeling page all use these rules.
"""

from __future__ import annotations

import csv
import io
import string
from dataclasses import dataclass
from typing import Any

MAX_LABELS_FILE_BYTES = 10 * 1024 * 1024  # Glue's limit for a labels file
LABEL_COLUMNS = ("labeling_set_id", "label")
BIG_SET_ROWS = 50  # Glue's guide: "more than 50 ... may cause poor results or system failure"
SMALL_SET_ROWS = 2  # a set teaches which of its records match: one record teaches nothing


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    where = f"byte 0x{data[error.start]:02x} at offset {error.start}"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        likely = "UTF-16 (Excel's 'Unicode Text')"
    else:
        try:
            data.decode("cp1252")
            likely = "Windows-1252 (cp1252), as Excel on Windows saves CSV"
        except UnicodeDecodeError:
            likely = "not a text encoding we recognize"
    return f"is not UTF-8 ({where}); it looks like {likely}: save it as CSV in UTF-8 without BOM"


def labels_file_problems(
    data: bytes, source_columns: list[str] | None = None
) -> tuple[str | None, list[str]]:
    """Check a labels file by Glue's labeling file format: ``(problem or None, warnings)``.

    The rules, from the Glue developer guide ("Labeling file format", "Machine learning
    exceptions") and StartImportLabelsTaskRun's limits: not empty and at most 10 MB; UTF-8
    without a byte-order mark; CSV whose header starts exactly ``labeling_set_id,label``
    (labels are case-sensitive text, so nothing is trimmed) followed by the source's columns;
    every row has a ``labeling_set_id`` and a ``label``. A set of over 50 rows or of one row
    is legal but poor teaching: a warning.

    :param data: the file's bytes.
    :param source_columns: the transform's schema (``GetMLTransform`` ``Schema``), if known.
    """
    if not data:
        return "is empty (Glue refuses a labels file of size 0)", []
    if len(data) > MAX_LABELS_FILE_BYTES:
        return f"has {len(data)} bytes; Glue accepts at most 10 MB (10485760 bytes): split it into files", []
    if data.startswith(b"\xef\xbb\xbf"):
        return (
            "starts with a byte-order mark (Excel's 'CSV UTF-8' adds one): save it as UTF-8 without BOM",
            [],
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return _not_utf8(data, error), []
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:
        return f"is not valid CSV ({error})", []
    if not rows:
        return "is empty (Glue refuses a labels file of size 0)", []
    header = rows[0]
    if tuple(header[:2]) != LABEL_COLUMNS:
        found = ",".join(header[:2]) or "nothing"
        return f"row 1 must begin exactly labeling_set_id,label (lowercase, no spaces); found {found!r}", []
    if source_columns and header[2:] != list(source_columns):
        return (
            f"row 1 has the columns {header[2:]} after label, but the transform's schema is "
            f"{list(source_columns)}: keep the source columns as the labeling set has them"
        ), []
    sizes: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            return f"row {number} has {len(row)} fields, the header has {len(header)}", []
        if not row[0].strip():
            return f"row {number} has no labeling_set_id: keep the column as the labeling set has it", []
        if not row[1].strip():
            return (
                f"row {number} (labeling set {row[0]}) has no label: give every record a label, "
                "the same label for records of the same entity"
            ), []
        sizes[row[0]] = sizes.get(row[0], 0) + 1
    warnings = [
        f"labeling set {name} has {count} rows; over {BIG_SET_ROWS} may cause poor results or system failure"
        for name, count in sizes.items()
        if count > BIG_SET_ROWS
    ] + [
        f"labeling set {name} has {count} row; it teaches nothing (a set needs {SMALL_SET_ROWS} or more)"
        for name, count in sizes.items()
        if count < SMALL_SET_ROWS
    ]
    return None, warnings


def labeling_set_ids(data: bytes) -> list[str]:
    """The ``labeling_set_id`` values of a labeling set or labels file, in their first order."""
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    next(reader, None)
    return list(dict.fromkeys(row[0] for row in reader if row and row[0].strip()))


def unlabeled_sets_problem(labeling_sets: list[bytes], labels: bytes) -> str | None:
    """Which sets of the labeling set (one or more files) the labels file leaves out, or None.

    Glue learns from every set it generated; a set with no labels is work that was asked for
    and not done.
    """
    wanted = [i for data in labeling_sets for i in labeling_set_ids(data)]
    missing = [i for i in dict.fromkeys(wanted) if i not in set(labeling_set_ids(labels))]
    if not missing:
        return None
    return f"has no labels for the labeling set(s) {', '.join(missing)}: label every record of every set"


class LabelingError(ValueError):
    """A draft or a submission that cannot be taken as it is; the message says what to change."""


class AlreadySubmitted(LabelingError):
    """The labels file is there already: the waiting task takes it, and it is not rewritten."""


@dataclass
class LabelingSet:
    """A generated labeling set: its source columns and each set's records (values as generated).

    :param columns: the source columns, after ``labeling_set_id,label``.
    :param sets: labeling set id to its records, in the files' order.
    """

    columns: list[str]
    sets: dict[str, list[list[str]]]

    @classmethod
    def parse(cls, files: list[bytes]) -> LabelingSet:
        """Read the labeling set's CSV files (one or more, as Glue writes them under the output path)."""
        columns: list[str] | None = None
        sets: dict[str, list[list[str]]] = {}
        for data in files:
            rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
            if not rows:
                continue
            header = rows[0]
            if tuple(header[:2]) != LABEL_COLUMNS or (columns is not None and header[2:] != columns):
                raise LabelingError(f"not a labeling set file: its header is {','.join(header)!r}")
            columns = header[2:]
            for row in rows[1:]:
                sets.setdefault(row[0], []).append(row[2:])
        return cls(columns or [], sets)

    def records(self) -> int:
        return sum(len(rows) for rows in self.sets.values())

    def check_draft(self, set_id: Any, groups: Any, done: Any) -> list[int]:
        """A set's draft as the page sends it: a group number per record, and whether it is done."""
        if not isinstance(set_id, str) or set_id not in self.sets:
            raise LabelingError(f"set_id {set_id!r} is not a set of this labeling set")
        size = len(self.sets[set_id])
        if (
            not isinstance(groups, list)
            or len(groups) != size
            or not all(isinstance(g, int) and not isinstance(g, bool) and 0 <= g < size for g in groups)
        ):
            raise LabelingError(
                f"groups of labeling set {set_id!r} must be {size} group numbers from 0 to {size - 1}, "
                f"one per record; got {groups!r}"
            )
        if not isinstance(done, bool):
            raise LabelingError(f"done of labeling set {set_id!r} must be true or false; got {done!r}")
        return groups

    def labels_file(self, drafts: dict[str, dict[str, Any]]) -> bytes:
        """The labels file from every set's draft; :class:`LabelingError` naming the sets not done."""
        if not self.sets:
            raise LabelingError("the labeling set has no records to label")
        missing = [s for s in self.sets if not drafts.get(s, {}).get("done")]
        if missing:
            raise LabelingError(
                f"labeling set(s) {', '.join(missing)} not labeled yet: group the records of every set "
                "and mark it done before submitting"
            )
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*LABEL_COLUMNS, *self.columns])
        for set_id, rows in self.sets.items():
            names: dict[int, str] = {}
            for row, group in zip(rows, drafts[set_id]["groups"], strict=True):
                writer.writerow([set_id, names.setdefault(group, label_name(len(names))), *row])
        return out.getvalue().encode("utf-8")


def label_name(number: int) -> str:
    """A, B, ..., Z, AA, AB, ...: one label per group within a set."""
    letters = string.ascii_uppercase
    name = ""
    number += 1
    while number:
        number, rest = divmod(number - 1, 26)
        name = letters[rest] + name
    return name
