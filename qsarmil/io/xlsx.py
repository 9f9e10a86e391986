"""XLSX workbooks read on a budget: the first sheet's XML is parsed as a stream (defusedxml's
expat parser: no DTD, no entities), so neither a huge cell, a row of millions of cells nor a
row number of two billion costs memory or time.

openpyxl's read-only mode cannot be bounded (it materialises every shared and inline string
and pads the gaps between rows), so this module reads the parts itself:

- every member is unpacked against :meth:`Limits.unpacked_budget` of its compressed size, and
  encrypted members or compression methods zip cannot unpack are refused in one line;
- the shared-string table is kept as UTF-8 bytes with offsets (held to its own budget);
- a cell's value is what it stores: text stays text, numbers become int or float (where the
  stored text is a finite number; ``1e309`` stays the text ``"1e309"``), booleans bool, a
  date-formatted number a datetime, an error code its text (``"#N/A"``);
- a formula cell comes back as its formula **text** (``"=SUM(A1:A3)"``: plain, array and
  shared formulas alike, a shared formula translated to its own cell as Excel shows it), never
  as a live formula; a data-table cell, which stores no formula text, comes back as its cached
  value.
"""

from __future__ import annotations

import lzma
import math
import re
import struct
import zipfile
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from posixpath import dirname, join, normpath

from .errors import BudgetError, TableError
from .limits import Limits, limit_hint
from .rows import Table, fit_row
from .text import check_columns

_READ = 1 << 16
_UNPACKABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d+)")
_EXACT_INT = 2**53
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attribute(attrib: dict, name: str) -> str | None:
    """An attribute by local name, with or without a namespace (``r:id``)."""
    if name in attrib:
        return attrib[name]
    return next((v for k, v in attrib.items() if _local(k) == name), None)


# ----------------------------------------------------------------------------- the zip


def _zip_member_count(fh) -> int:
    """Members the end-of-central-directory record declares (read before zipfile reads them)."""
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(max(0, size - 65_557))
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return -1
    return struct.unpack("<H", tail[at + 10:at + 12])[0]


class _Workbook:
    """The zip of a workbook, its members read against the budget."""

    def __init__(self, path: str, limits: Limits):
        self.path, self.limits = path, limits
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            members = _zip_member_count(self._fh)
            if members >= min(limits.max_zip_members + 1, 0xFFFF):
                raise BudgetError(f"{path}: the workbook has {members} members, more than "
                                  f"{limits.max_zip_members} ({limit_hint('max_zip_members')})")
            self._fh.seek(0)
            self.zip = zipfile.ZipFile(self._fh)
            self.names = set(self.zip.namelist())
        except BaseException as exc:
            self._fh.close()
            if isinstance(exc, (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error)) \
                    and not isinstance(exc, TableError):
                raise TableError(f"{path}: not an XLSX workbook ({type(exc).__name__}: {exc})") from None
            raise

    def close(self) -> None:
        self.zip.close()
        self._fh.close()

    def chunks(self, name: str) -> Iterator[bytes]:
        """A member's bytes, unpacked in pieces, refused where encrypted, packed with a method
        zip cannot unpack, or unpacking past the budget."""
        info = self.zip.getinfo(name)
        where = f"{self.path}: member {name!r}"
        if info.flag_bits & 0x1:
            raise TableError(f"{where} is encrypted; save the workbook without a password")
        if info.compress_type not in _UNPACKABLE:
            raise TableError(f"{where} is packed with zip method {info.compress_type}, which this "
                             "reader cannot unpack; save it again from Excel or LibreOffice")
        budget = self.limits.unpacked_budget(info.compress_size)
        if info.file_size > budget:
            raise BudgetError(f"{where} declares {info.file_size} bytes, more than {budget} "
                              f"({limit_hint('max_expansion')} or expansion_floor)")
        done = 0
        try:
            with self.zip.open(info) as member:
                while piece := member.read(_READ):
                    done += len(piece)
                    if done > budget:
                        raise BudgetError(f"{where} unpacks to more than {budget} bytes "
                                          f"({limit_hint('max_expansion')} or expansion_floor)")
                    yield piece
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
                lzma.LZMAError) as exc:
            raise TableError(f"{where}: cannot be unpacked ({type(exc).__name__}: {exc})") from None

    def part(self, name: str) -> bytes:
        """A small member whole (workbook, relationships, styles), held to ``max_part_bytes``."""
        data = bytearray()
        for piece in self.chunks(name):
            data += piece
            if len(data) > self.limits.max_part_bytes:
                raise BudgetError(f"{self.path}: member {name!r} is larger than "
                                  f"{self.limits.max_part_bytes} bytes ({limit_hint('max_part_bytes')})")
        return bytes(data)


# ----------------------------------------------------------------------------- XML


def _parse_error_types() -> tuple:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    return ParseError, DefusedXmlException, SyntaxError, ValueError


def _tree(book: _Workbook, name: str):
    """A small part as an element tree (defusedxml: no DTD, no entities)."""
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(book.part(name), forbid_dtd=True)
    except BudgetError:
        raise
    except _parse_error_types() as exc:
        raise TableError(f"{book.path}: member {name!r} is not readable XML "
                         f"({type(exc).__name__}: {exc})") from None


def _stream(book: _Workbook, name: str, target) -> Iterator[None]:
    """Feed a member to ``target`` piece by piece; yields after each piece."""
    from defusedxml.ElementTree import DefusedXMLParser

    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    try:
        for piece in book.chunks(name):
            parser.feed(piece)
            yield
        parser.close()
    except (BudgetError, TableError):
        raise
    except _parse_error_types() as exc:
        raise TableError(f"{book.path}: member {name!r} is not readable XML "
                         f"({type(exc).__name__}: {exc})") from None
    yield


def _relationships(book: _Workbook, part: str) -> dict[str, tuple[str, str]]:
    """Id -> (type, member name) of a part's relationships."""
    rels = join(dirname(part), "_rels", part.rsplit("/", 1)[-1] + ".rels")
    if rels not in book.names:
        return {}
    out = {}
    for rel in _tree(book, rels):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        name = normpath(target.lstrip("/") if target.startswith("/") else join(dirname(part), target))
        out[rel.get("Id", "")] = (rel.get("Type", "").rsplit("/", 1)[-1], name)
    return out


class _Parts:
    """Where the first sheet, the shared strings and the styles are; the date system."""

    def __init__(self, book: _Workbook):
        root = _relationships(book, "")  # _rels/.rels
        workbook = next((n for t, n in root.values() if t == "officeDocument"), "xl/workbook.xml")
        if workbook not in book.names:
            raise TableError(f"{book.path}: not an XLSX workbook (no workbook part)")
        tree = _tree(book, workbook)
        rels = _relationships(book, workbook)
        sheets = [e for e in tree.iter() if _local(e.tag) == "sheet"]
        if not sheets:
            raise TableError(f"{book.path}: the workbook has no worksheet")
        self.sheet = rels.get(_attribute(sheets[0].attrib, "id") or "", ("", ""))[1]
        if self.sheet not in book.names:
            raise TableError(f"{book.path}: the first sheet's part is missing from the workbook")
        found = {t: n for t, n in rels.values()}
        self.strings = found.get("sharedStrings") if found.get("sharedStrings") in book.names else None
        self.styles = found.get("styles") if found.get("styles") in book.names else None
        props = next((e for e in tree.iter() if _local(e.tag) == "workbookPr"), None)
        self.date1904 = props is not None and props.get("date1904", "0").lower() in ("1", "true")


# ----------------------------------------------------------------------------- shared strings


class _Strings:
    """The shared-string table as UTF-8 bytes and offsets (a str per entry would cost ~50 bytes
    of overhead each, and one non-ASCII character would widen a joined str fourfold). It is
    also the XML parser's target while the table is read."""

    def __init__(self, path: str, limits: Limits):
        self.path, self.limits = path, limits
        self._bytes = bytearray()
        self._ends = array("Q")
        self._parts: list[str] | None = None
        self._chars = 0
        self._rph = 0
        self._collect = False

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, k: int) -> str:
        if k < 0:
            raise IndexError(k)
        start = self._ends[k - 1] if k else 0
        return self._bytes[start:self._ends[k]].decode("utf-8")

    def start(self, tag, attrib):
        name = _local(tag)
        if name == "si":
            self._parts, self._chars = [], 0
        elif name == "rPh":  # phonetic hints are not the cell's text
            self._rph += 1
        elif name == "t" and self._parts is not None and not self._rph:
            self._collect = True

    def end(self, tag):
        name = _local(tag)
        if name == "t":
            self._collect = False
        elif name == "rPh":
            self._rph -= 1
        elif name == "si" and self._parts is not None:
            self._add("".join(self._parts))
            self._parts = None

    def data(self, text):
        if self._collect:
            self._chars += len(text)
            if self._chars > self.limits.max_cell_chars:
                raise BudgetError(f"{self.path}: shared string {len(self._ends)} holds more than "
                                  f"{self.limits.max_cell_chars} characters "
                                  f"({limit_hint('max_cell_chars')})")
            self._parts.append(text)

    def close(self):
        return None

    def _add(self, text: str) -> None:
        if len(self._ends) >= self.limits.max_shared_strings:
            raise BudgetError(f"{self.path}: more than {self.limits.max_shared_strings} shared "
                              f"strings ({limit_hint('max_shared_strings')})")
        self._bytes += text.encode("utf-8")
        if len(self._bytes) > self.limits.max_shared_strings_bytes:
            raise BudgetError(f"{self.path}: the shared strings hold more than "
                              f"{self.limits.max_shared_strings_bytes} bytes "
                              f"({limit_hint('max_shared_strings_bytes')})")
        self._ends.append(len(self._bytes))


# ----------------------------------------------------------------------------- styles


def _date_styles(book: _Workbook, name: str | None) -> dict[int, bool]:
    """Style index -> True for a duration format, False for a date format (others absent)."""
    if name is None:
        return {}
    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

    tree = _tree(book, name)
    custom = {}
    for e in tree.iter():
        if _local(e.tag) == "numFmt":
            try:
                custom[int(e.get("numFmtId", "-1"))] = e.get("formatCode", "")
            except ValueError:
                continue
    xfs = next((e for e in tree.iter() if _local(e.tag) == "cellXfs"), None)
    out = {}
    for k, xf in enumerate(() if xfs is None else [x for x in xfs if _local(x.tag) == "xf"]):
        try:
            fmt_id = int(xf.get("numFmtId", "0"))
        except ValueError:
            continue
        code = custom.get(fmt_id, BUILTIN_FORMATS.get(fmt_id, ""))
        if code and is_date_format(code):
            out[k] = is_timedelta_format(code)
    return out


# ----------------------------------------------------------------------------- the sheet


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


class _SheetTarget:
    """Turns sheet XML events into finished rows: (row number, {column: value})."""

    def __init__(self, path: str, strings: _Strings, dates: dict[int, bool], date1904: bool,
                 limits: Limits):
        self.path, self.strings, self.dates, self.limits = path, strings, dates, limits
        self.epoch = None
        self.date1904 = date1904
        self.done: list[tuple[int, dict]] = []
        self.row_number = 0
        self.cells: dict | None = None
        self.row_chars = 0
        self.masters: dict[str, tuple[str, str]] = {}
        self.master_chars = 0
        self._text: list[str] | None = None
        self._text_chars = 0
        self._rph = 0

    # -- XML events
    def start(self, tag, attrib):
        name = _local(tag)
        if name == "row":
            self._start_row(attrib)
        elif name == "c":
            self._start_cell(attrib)
        elif name in ("v", "f") and self.cell is not None:
            self._text, self._text_chars, self._in = [], 0, name
            if name == "f":
                self.f_attrib = dict(attrib)
        elif name == "rPh":
            self._rph += 1
        elif name == "t" and self.cell is not None and not self._rph:
            if self.inline is None:
                self.inline = []
            self._text, self._in = self.inline, "t"

    cell = None
    inline = None
    _in = None
    f_attrib: dict = {}

    def data(self, text):
        if self._text is None:
            return
        self._text_chars += len(text)
        if self._text_chars > self.limits.max_cell_chars:
            raise BudgetError(f"{self.path}: cell {self._ref()} holds more than "
                              f"{self.limits.max_cell_chars} characters ({limit_hint('max_cell_chars')})")
        self._text.append(text)

    def end(self, tag):
        name = _local(tag)
        if name in ("v", "f") and self._in == name and self._text is not None:
            setattr(self, "value_text" if name == "v" else "formula", "".join(self._text))
            self._text, self._in = None, None
        elif name == "t" and self._in == "t":
            self._text, self._in = None, None
        elif name == "rPh":
            self._rph -= 1
        elif name == "c" and self.cell is not None:
            self._end_cell()
        elif name == "row" and self.cells is not None:
            self.done.append((self.row_number, self.cells))
            self.cells = None

    def close(self):
        return None

    # -- rows and cells
    def _start_row(self, attrib):
        number = attrib.get("r")
        previous = self.row_number
        try:
            self.row_number = int(number) if number is not None else previous + 1
        except ValueError:
            raise TableError(f"{self.path}: sheet row after row {previous} has the number "
                             f"{number[:20]!r}") from None
        if self.row_number - previous - 1 > self.limits.max_row_gap:
            raise BudgetError(f"{self.path}: sheet row {self.row_number} follows row {previous}: a gap "
                              f"of more than {self.limits.max_row_gap} rows ({limit_hint('max_row_gap')})")
        self.cells, self.row_chars, self.column = {}, 0, 0

    def _start_cell(self, attrib):
        if self.cells is None:  # a cell outside a row: treat it as a row of its own
            self._start_row({})
        ref = attrib.get("r")
        column = self.column + 1
        if ref is not None:
            found = _CELL_REF.fullmatch(ref)
            if not found:
                raise TableError(f"{self.path}: row {self.row_number}: a cell named {ref[:20]!r}")
            column = _column_number(found.group(1))
        if column > self.limits.max_columns:
            raise BudgetError(f"{self.path}: row {self.row_number}: cell {ref or column} is beyond "
                              f"column {self.limits.max_columns} ({limit_hint('max_columns')})")
        self.column = column
        self.cell = attrib
        self.value_text = self.formula = self.inline = None
        self.f_attrib, self._text_chars = {}, 0

    def _ref(self) -> str:
        return (self.cell or {}).get("r") or f"{self.column} of row {self.row_number}"

    def _end_cell(self):
        value = self._value()
        if isinstance(value, str):
            self.row_chars += len(value)
            if self.row_chars > self.limits.max_record_chars:
                raise BudgetError(f"{self.path}: sheet row {self.row_number} holds more than "
                                  f"{self.limits.max_record_chars} characters "
                                  f"({limit_hint('max_record_chars')})")
        if value is not None:
            self.cells[self.column] = value
        self.cell = None

    def _value(self):
        kind = self.cell.get("t", "n")
        if self.formula is not None or self.f_attrib:
            text = self._formula_text()
            if text is not None:
                return text
        if kind == "inlineStr":
            return "".join(self.inline) if self.inline is not None else None
        raw = self.value_text
        if raw is None:
            return None
        if kind == "s":
            return self._shared(raw)
        if kind == "b":
            return {"1": True, "0": False}.get(raw.strip(), raw)
        if kind in ("e", "str", "d"):
            return raw
        return self._number(raw)

    def _formula_text(self) -> str | None:
        """``"=" + formula`` for a cell with formula text; a shared formula's follower gets its
        master translated to this cell; None where there is no text (a data table)."""
        kind, group = self.f_attrib.get("t", "normal"), self.f_attrib.get("si")
        ref = self.cell.get("r") or ""
        if self.formula:
            text = self.formula if self.formula.startswith("=") else "=" + self.formula
            if kind == "shared" and group is not None and ref:
                self.master_chars += len(text)
                if self.master_chars > self.limits.max_shared_strings_bytes:
                    raise BudgetError(f"{self.path}: shared formulas hold more than "
                                      f"{self.limits.max_shared_strings_bytes} characters "
                                      f"({limit_hint('max_shared_strings_bytes')})")
                self.masters[group] = (text, ref)
            return text
        if kind == "shared" and group in self.masters and ref:
            from openpyxl.formula.translate import Translator, TranslatorError

            master, origin = self.masters[group]
            try:
                return Translator(master, origin=origin).translate_formula(ref)
            except (TranslatorError, ValueError, IndexError):
                return None
        return None

    def _shared(self, raw: str) -> str:
        try:
            return self.strings[int(raw)]
        except (ValueError, IndexError, OverflowError):
            raise TableError(f"{self.path}: cell {self._ref()} names shared string {raw[:20]!r} of "
                             f"{len(self.strings)}") from None

    def _number(self, raw: str):
        text = raw.strip()
        if not _NUMBER.fullmatch(text):
            return raw  # not a number: the stored text
        number = float(text)
        if not math.isfinite(number):
            return raw  # 1e309: the text, not inf
        style = self.cell.get("s")
        if style is not None and style.isdigit() and int(style) in self.dates:
            return self._date(number, self.dates[int(style)])
        if _INTEGER.fullmatch(text):
            value = int(text)
            return value if abs(value) < _EXACT_INT else raw
        return number

    def _date(self, number: float, duration: bool):
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

        try:
            return from_excel(number, CALENDAR_MAC_1904 if self.date1904 else CALENDAR_WINDOWS_1900,
                              timedelta=duration)
        except (ValueError, OverflowError):
            return number


def _sheet_rows(book: _Workbook, parts: _Parts, limits: Limits) -> Iterator[tuple[list, str]]:
    """Rows with at least one value, trailing empty cells dropped, with their sheet row number."""
    strings = _Strings(book.path, limits)
    if parts.strings is not None:
        for _ in _stream(book, parts.strings, strings):
            pass
    target = _SheetTarget(book.path, strings, _date_styles(book, parts.styles), parts.date1904, limits)
    for _ in _stream(book, parts.sheet, target):
        done, target.done = target.done, []
        for number, cells in done:
            if cells:
                values = [None] * max(cells)
                for column, value in cells.items():
                    values[column - 1] = value
                yield values, f"row {number}"


@contextmanager
def read_xlsx(path: str, limits: Limits) -> Iterator[Table]:
    """The first sheet of a workbook as a table (see the module docstring)."""
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    book = _Workbook(path, limits)
    try:
        parts = _Parts(book)
        records = _sheet_rows(book, parts, limits)
        header = next(records, None)
        if header is None:
            raise TableError(f"{path}: the first sheet is empty (no header row)")
        check_columns(path, len(header[0]), limits)
        header = ["" if v is None else str(v) for v in header[0]]
        width = len(header)
        # A sheet row ends at its last value: shorter rows are padded, longer ones are ragged.
        padded = ((cells + [None] * (width - len(cells)), where) for cells, where in records)
        yield Table(path, header, (fit_row(cells, width, where, None) for cells, where in padded))
    finally:
        book.close()
