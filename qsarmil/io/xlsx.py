"""XLSX workbooks read on a budget: the first sheet's XML is parsed as a stream (defusedxml's
expat parser: no DTD, no entities), so neither a huge cell, a row of millions of cells nor a
row number of two billion costs memory or time.

openpyxl's read-only mode cannot be bounded (it materialises every shared and inline string
and pads the gaps between rows), so this module reads the parts itself:

- every member is unpacked against :meth:`Limits.unpacked_budget` of its compressed size, and
  encrypted members or compression methods zip cannot unpack are refused in one line;
- the shared-string table is kept as UTF-8 bytes with offsets (held to its own budget);
- a cell's value is what it stores: text stays text (OOXML's ``_xHHHH_`` escapes decoded, as
  Excel shows them), numbers become int or float (where the
  stored text is a finite number; ``1e309`` stays the text ``"1e309"``), booleans bool, a
  date-formatted number a datetime, an error code its text (``"#N/A"``);
- a formula cell comes back as the value Excel stored for it (its cached result, as pandas
  and openpyxl's ``data_only`` read it: ``=SUM(A1:A3)`` reads ``6``), never as a live formula;
  a formula never calculated (no stored value) comes back as its **text**, ``"=SUM(A1:A3)"``,
  a shared formula's other cells translated to their own place as Excel shows them;
- the sheet must be laid out as every writer lays it out (rows down, cells right, each named
  once): a row inside a row, a cell named twice, rows going back are refused, never merged;
- text is held to budgets while it streams: each cell, each row, every cell of the sheet
  together (a shared string named a million times counts a million times), nesting depth,
  and each tag, comment or declaration (expat holds an unfinished one whole and rescans it
  with every piece fed: a 60 MB attribute took 52 s, a tag of 4M attributes 1.2 GB).
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
_MAX_DEPTH = 128  # workbook writers nest under 20 deep
_MAX_FORMULA_CHARS = 8192  # Excel's own limit on a formula's length
_UNPACKABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_CELL_REF = re.compile(r"([A-Za-z]{1,3})(\d+)")
_EXACT_INT = 2**53
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def unescape_ooxml(text: str) -> str:
    """Text as Excel shows it: OOXML writes a character XML cannot hold as ``_xHHHH_``
    (``_x000D_``) and escapes its own underscore before ``xHHHH_`` as ``_x005F_``; a surrogate
    code stays as written."""
    return _OOXML_ESCAPE.sub(_unescaped, text) if "_x" in text else text


def _unescaped(found: re.Match) -> str:
    code = int(found.group(1), 16)
    return found.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attribute(attrib: dict, name: str) -> str | None:
    """An attribute by local name, with or without a namespace (``r:id``)."""
    if name in attrib:
        return attrib[name]
    return next((v for k, v in attrib.items() if _local(k) == name), None)


# ----------------------------------------------------------------------------- the zip


def _check_member_count(fh, path: str, most: int) -> None:
    """Refuse a zip of more than ``most`` members, counted from the raw entries of its central
    directory before zipfile builds an object for each (the end record's own count may lie:
    zipfile reads the directory by its size). A ZIP64 archive (over 4 GiB or 65 535 members,
    which no workbook writer makes) is refused too: zipfile would take its sizes from there."""
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(max(0, size - 65_557))
    start = fh.tell()
    tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return  # not a zip: zipfile says so
    declared, directory_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if (at >= 20 and tail[at - 20:at - 16] == b"PK\x06\x07") or declared == 0xFFFF \
            or directory_size == 0xFFFFFFFF:
        raise TableError(f"{path}: a ZIP64 archive, which no workbook writer makes; save it again "
                         "from Excel or LibreOffice")
    end = start + at
    count, offset = 0, 0
    while offset + 46 <= min(directory_size, end) and count <= most:
        fh.seek(end - directory_size + offset)
        head = fh.read(46)
        if head[:4] != b"PK\x01\x02":
            break
        name, extra, comment = struct.unpack("<HHH", head[28:34])
        count, offset = count + 1, offset + 46 + name + extra + comment
    if max(count, declared) > most:
        raise BudgetError(f"{path}: the workbook has more than {most} members "
                          f"({limit_hint('max_zip_members')})")


class _Workbook:
    """The zip of a workbook, its members read against the budget."""

    def __init__(self, path: str, limits: Limits):
        self.path, self.limits = path, limits
        self._fh = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            _check_member_count(self._fh, path, limits.max_zip_members)
            self.size = self._fh.seek(0, 2)
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


# ----------------------------------------------------------------------------- XML


def _parse_error_types() -> tuple:
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    return ParseError, DefusedXmlException, SyntaxError, ValueError


class _Target:
    """A parser target that refuses XML nested deeper than any workbook writer nests it
    (expat keeps a record per open element: a million nested tags would cost hundreds of MB)."""

    path = ""
    member = ""
    _depth = 0

    def _open(self) -> None:
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise TableError(f"{self.path}: member {self.member!r} nests elements more than "
                             f"{_MAX_DEPTH} deep")

    def _close(self) -> None:
        self._depth -= 1

    def data(self, text):
        return None

    def close(self):
        return None


def _stream(book: _Workbook, name: str, target: _Target) -> Iterator[None]:
    """Feed a member to ``target`` piece by piece; yields after each piece."""
    from defusedxml.ElementTree import DefusedXMLParser

    target.path, target.member = book.path, name
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    most, fed = book.limits.max_markup_bytes, 0
    try:
        for piece in book.chunks(name):
            parser.feed(piece)
            fed += len(piece)
            # expat stops at the start of a tag, comment or declaration it has not seen the end
            # of, holds it whole and scans it again with every piece: bound how far it lags.
            start = max(parser.parser.CurrentByteIndex, 0)
            if fed - start > most:
                raise BudgetError(f"{book.path}: member {name!r}: the XML tag, comment or "
                                  f"declaration at byte {start} is longer than {most} bytes "
                                  f"({limit_hint('max_markup_bytes')})")
            yield
        parser.close()
    except (BudgetError, TableError):
        raise
    except _parse_error_types() as exc:
        raise TableError(f"{book.path}: member {name!r} is not readable XML "
                         f"({type(exc).__name__}: {exc})") from None
    yield


def _read(book: _Workbook, name: str, target: _Target):
    """Stream a small part (workbook, relationships, styles) through ``target``, held to
    ``max_part_bytes``; what the target kept."""
    info = book.zip.getinfo(name)
    if info.file_size > book.limits.max_part_bytes:
        raise BudgetError(f"{book.path}: member {name!r} is larger than "
                          f"{book.limits.max_part_bytes} bytes ({limit_hint('max_part_bytes')})")
    done = 0
    for _ in _stream(book, name, target):
        done += _READ
        if done > book.limits.max_part_bytes + _READ:
            raise BudgetError(f"{book.path}: member {name!r} is larger than "
                              f"{book.limits.max_part_bytes} bytes ({limit_hint('max_part_bytes')})")
    return target


class _FirstOf(_Target):
    """Keeps the attributes of the first element of each wanted local name."""

    def __init__(self, *names: str):
        self.found: dict[str, dict] = {}
        self._names = set(names)

    def start(self, tag, attrib):
        self._open()
        name = _local(tag)
        if name in self._names and name not in self.found:
            self.found[name] = dict(attrib)

    def end(self, tag):
        self._close()


class _Relationships(_Target):
    """Relationships kept by id or by type; at most one per id and type asked for."""

    def __init__(self, ids: tuple[str, ...] = (), types: tuple[str, ...] = ()):
        self.by_id: dict[str, str] = {}
        self.by_type: dict[str, str] = {}
        self._ids, self._types = set(ids), set(types)
        self.base = ""

    def start(self, tag, attrib):
        self._open()
        if _local(tag) != "Relationship" or attrib.get("TargetMode") == "External":
            return
        target = attrib.get("Target", "")
        name = normpath(target.lstrip("/") if target.startswith("/") else join(self.base, target))
        kind, ident = attrib.get("Type", "").rsplit("/", 1)[-1], attrib.get("Id", "")
        if ident in self._ids:
            self.by_id.setdefault(ident, name)
        if kind in self._types:
            self.by_type.setdefault(kind, name)

    def end(self, tag):
        self._close()


def _relationships(book: _Workbook, part: str, ids: tuple[str, ...] = (),
                   types: tuple[str, ...] = ()) -> _Relationships:
    """A part's relationships with these ids and types."""
    found = _Relationships(ids, types)
    found.base = dirname(part)
    rels = join(dirname(part), "_rels", part.rsplit("/", 1)[-1] + ".rels")
    return _read(book, rels, found) if rels in book.names else found


class _Parts:
    """Where the first sheet, the shared strings and the styles are; the date system."""

    def __init__(self, book: _Workbook):
        root = _relationships(book, "", types=("officeDocument",))
        workbook = root.by_type.get("officeDocument", "xl/workbook.xml")
        if workbook not in book.names:
            raise TableError(f"{book.path}: not an XLSX workbook (no workbook part)")
        found = _read(book, workbook, _FirstOf("sheet", "workbookPr")).found
        if "sheet" not in found:
            raise TableError(f"{book.path}: the workbook has no worksheet")
        sheet_id = _attribute(found["sheet"], "id") or ""
        rels = _relationships(book, workbook, ids=(sheet_id,), types=("sharedStrings", "styles"))
        self.sheet = rels.by_id.get(sheet_id, "")
        if self.sheet not in book.names:
            raise TableError(f"{book.path}: the first sheet's part is missing from the workbook")
        self.strings = rels.by_type.get("sharedStrings")
        self.strings = self.strings if self.strings in book.names else None
        self.styles = rels.by_type.get("styles")
        self.styles = self.styles if self.styles in book.names else None
        props = found.get("workbookPr", {})
        self.date1904 = props.get("date1904", "0").lower() in ("1", "true")


# ----------------------------------------------------------------------------- shared strings


class _Strings(_Target):
    """The shared-string table as UTF-8 bytes and offsets (a str per entry would cost ~50 bytes
    of overhead each, and one non-ASCII character would widen a joined str fourfold), with each
    entry's length in characters. It is also the XML parser's target while the table is read."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self._bytes = bytearray()
        self._ends = array("Q")
        self._lengths = array("I")  # characters of each entry (at most max_cell_chars)
        self._parts: list[str] | None = None
        self._chars = 0
        self._rph = 0
        self._collect = False

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, k: int) -> str:
        start = self._ends[k - 1] if k else 0
        return self._bytes[start:self._ends[k]].decode("utf-8")

    def length(self, k: int) -> int:
        """Characters of entry ``k``, without decoding it."""
        return self._lengths[k]

    def start(self, tag, attrib):
        self._open()
        name = _local(tag)
        if name == "si":
            if self._parts is not None:
                raise TableError(f"{self.path}: shared string {len(self)} holds another inside it")
            self._parts, self._chars = [], 0
        elif name == "rPh":  # phonetic hints are not the cell's text
            self._rph += 1
        elif name == "t" and self._parts is not None and not self._rph:
            self._collect = True

    def end(self, tag):
        self._close()
        name = _local(tag)
        if name == "t":
            self._collect = False
        elif name == "rPh":
            self._rph -= 1
        elif name == "si" and self._parts is not None:
            self._add(unescape_ooxml("".join(self._parts)))
            self._parts = None

    def data(self, text):
        if self._collect:
            self._chars += len(text)
            if self._chars > self.limits.max_cell_chars:
                raise BudgetError(f"{self.path}: shared string {len(self)} holds more than "
                                  f"{self.limits.max_cell_chars} characters "
                                  f"({limit_hint('max_cell_chars')})")
            self._parts.append(text)

    def _add(self, text: str) -> None:
        if len(self) >= self.limits.max_shared_strings:
            raise BudgetError(f"{self.path}: more than {self.limits.max_shared_strings} shared "
                              f"strings ({limit_hint('max_shared_strings')})")
        self._bytes += text.encode("utf-8")
        if len(self._bytes) > self.limits.max_shared_strings_bytes:
            raise BudgetError(f"{self.path}: the shared strings hold more than "
                              f"{self.limits.max_shared_strings_bytes} bytes "
                              f"({limit_hint('max_shared_strings_bytes')})")
        self._ends.append(len(self._bytes))
        self._lengths.append(len(text))


# ----------------------------------------------------------------------------- styles


class _Styles(_Target):
    """Which cell styles (``cellXfs`` entries) show a number as a date or a duration: the
    number format of each entry (a compact array) and the formats that are dates."""

    def __init__(self):
        from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format, is_timedelta_format

        self._is_date, self._is_duration = is_date_format, is_timedelta_format
        # number format id -> True (a duration), False (a date), None (a built-in made no date)
        self.kinds: dict[int, bool | None] = {k: is_timedelta_format(code) for k, code in
                                              BUILTIN_FORMATS.items() if is_date_format(code)}
        self._builtin = set(BUILTIN_FORMATS)
        self.formats = array("l")  # cellXfs entry -> its number format id (-1: none)
        self._in_cell_xfs = False

    def start(self, tag, attrib):
        self._open()
        name = _local(tag)
        if name == "numFmt":
            number, code = _small_int(attrib.get("numFmtId")), attrib.get("formatCode", "")
            if number is not None and code and self._is_date(code):
                self.kinds[number] = self._is_duration(code)
            elif number in self._builtin:
                self.kinds[number] = None
        elif name == "cellXfs":
            self._in_cell_xfs = True
        elif name == "xf" and self._in_cell_xfs:
            number = _small_int(attrib.get("numFmtId", "0"))
            self.formats.append(-1 if number is None else number)

    def end(self, tag):
        self._close()
        if _local(tag) == "cellXfs":
            self._in_cell_xfs = False

    def kind(self, style: str | None) -> bool | None:
        """For a cell's style attribute: True (a duration), False (a date), None (neither)."""
        index = _small_int(style)
        if index is None or index >= len(self.formats):
            return None
        return self.kinds.get(self.formats[index])


def _styles(book: _Workbook, name: str | None) -> _Styles:
    """The workbook's date styles (none where it has no styles part)."""
    return _Styles() if name is None else _read(book, name, _Styles())


def _small_int(text: str | None, digits: int = 9) -> int | None:
    """``text`` as a non-negative int of at most ``digits`` digits, else None (no int() of a
    5000-digit string: Python refuses those)."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None


# ----------------------------------------------------------------------------- the sheet


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


class _Shared:
    """A cell naming a shared string, decoded only when its row is handed on: a 64 KB piece of
    sheet XML can name one long string thousands of times."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


class _Follower:
    """A cell of a shared formula other than its first, never calculated: its formula is the
    first cell's translated to it, when its row is handed on (empty where that cannot be done)."""

    __slots__ = ("group", "master", "ref")

    def __init__(self, group: str, master: tuple[str, str], ref: str):
        self.group, self.master, self.ref = group, master, ref


class _SheetTarget(_Target):
    """Turns sheet XML events into finished rows: (row number, {column: value}), a value being
    plain or a :class:`_Shared` / :class:`_Follower` that :meth:`resolve` turns into text.

    The sheet must be as every writer makes it: rows going down, cells going right, each
    cell in its own row; anything else (a row inside a row, a cell named twice) would lose or
    move a value, so it is refused. Empty rows count towards ``max_row_gap``; the text of all
    cells together is held to the workbook's unpacked budget, so a long shared string or formula
    named again and again cannot flood the reader or what it writes."""

    def __init__(self, strings: _Strings, styles: _Styles, date1904: bool, limits: Limits,
                 text_budget: int):
        self.strings, self.styles, self.date1904, self.limits = strings, styles, date1904, limits
        self.text_budget, self.text_chars = text_budget, 0
        self.done: list[tuple[int, dict]] = []
        self.in_data = False
        self.row_number = self.last_kept = 0
        self.cells: dict | None = None
        self.row_chars = self.column = 0
        self.cell: dict | None = None
        self.masters: dict[str, tuple[str, str]] = {}  # shared formula group -> (text, origin)
        self.master_chars = self.translated_chars = 0
        self._translators: dict[str, tuple] = {}  # group -> (master, its Translator or False)
        self._text: list[str] | None = None
        self._in: str | None = None
        self._rph = 0

    # -- XML events
    def start(self, tag, attrib):
        self._open()
        name = _local(tag)
        if name == "sheetData":
            self.in_data = True
        elif not self.in_data:
            return
        elif name == "row":
            self._start_row(attrib)
        elif name == "c":
            self._start_cell(attrib)
        elif self.cell is None:
            return
        elif name in ("v", "f"):
            self._text, self._in = [], name
            if name == "f":
                self.f_attrib = dict(attrib)
        elif name == "rPh":
            self._rph += 1
        elif name == "t" and not self._rph:
            if self.inline is None:
                self.inline = []
            self._text, self._in = self.inline, "t"

    def data(self, text):
        if self._text is None:
            return
        self._cell_chars += len(text)  # everything a cell holds, whatever element it is in
        if self._cell_chars > self.limits.max_cell_chars:
            raise BudgetError(f"{self.path}: cell {self._ref()} holds more than "
                              f"{self.limits.max_cell_chars} characters ({limit_hint('max_cell_chars')})")
        self._text.append(text)

    def end(self, tag):
        self._close()
        name = _local(tag)
        if name == "sheetData":
            self.in_data = False
        elif not self.in_data:
            return
        elif name in ("v", "f") and self._in == name:
            setattr(self, "value_text" if name == "v" else "formula", "".join(self._text))
            self._text, self._in = None, None
        elif name == "t" and self._in == "t":
            self._text, self._in = None, None
        elif name == "rPh":
            self._rph -= 1
        elif name == "c" and self.cell is not None:
            self._end_cell()
        elif name == "row" and self.cells is not None:
            if self.cells:
                self.last_kept = self.row_number
            self.done.append((self.row_number, self.cells))
            self.cells = None

    # -- rows and cells
    def _start_row(self, attrib):
        previous = self.row_number
        if self.cells is not None:
            raise TableError(f"{self.path}: a sheet row opens inside row {previous}")
        number = attrib.get("r")
        self.row_number = previous + 1 if number is None else _small_int(number, 10)
        if self.row_number is None or self.row_number < 1:
            raise TableError(f"{self.path}: sheet row after row {previous} has the number "
                             f"{number[:20]!r}")
        if self.row_number <= previous:
            raise TableError(f"{self.path}: sheet row {self.row_number} comes after row {previous} "
                             "(rows must go down the sheet, each once)")
        if self.row_number - self.last_kept - 1 > self.limits.max_row_gap:
            raise BudgetError(f"{self.path}: sheet row {self.row_number} follows row {self.last_kept}"
                              f" (empty rows between): a gap of more than {self.limits.max_row_gap} "
                              f"rows ({limit_hint('max_row_gap')})")
        self.cells, self.row_chars, self.column = {}, 0, 0

    def _start_cell(self, attrib):
        ref = attrib.get("r")
        if self.cells is None:
            raise TableError(f"{self.path}: a cell ({(ref or 'unnamed')[:20]}) outside any sheet row")
        if self.cell is not None:
            raise TableError(f"{self.path}: cell {self._ref()} holds another cell")
        column = self.column + 1
        if ref is not None:
            found = _CELL_REF.fullmatch(ref)
            if not found or _small_int(found.group(2), 10) != self.row_number:
                raise TableError(f"{self.path}: sheet row {self.row_number} holds a cell named "
                                 f"{ref[:20]!r}")
            column = _column_number(found.group(1))
        if column <= self.column:
            raise TableError(f"{self.path}: cell {ref} comes after column {self.column} of row "
                             f"{self.row_number} (a cell named twice or out of order)")
        if column > self.limits.max_columns:
            raise BudgetError(f"{self.path}: row {self.row_number}: cell {ref or column} is beyond "
                              f"column {self.limits.max_columns} ({limit_hint('max_columns')})")
        self.column = column
        self.cell = attrib
        self.value_text = self.formula = self.inline = None
        self.f_attrib, self._cell_chars = {}, 0

    def _ref(self) -> str:
        return (self.cell or {}).get("r") or f"{self.column} of row {self.row_number}"

    def _end_cell(self):
        value = self._value()
        chars = self._chars(value)
        self.row_chars += chars
        self.text_chars += chars
        if self.row_chars > self.limits.max_record_chars:
            raise BudgetError(f"{self.path}: sheet row {self.row_number} holds more than "
                              f"{self.limits.max_record_chars} characters "
                              f"({limit_hint('max_record_chars')})")
        if self.text_chars > self.text_budget:
            raise BudgetError(f"{self.path}: the sheet's cells hold more than {self.text_budget} "
                              f"characters in all, by cell {self._ref()} "
                              f"({limit_hint('max_expansion')} or expansion_floor)")
        if value is not None:
            self.cells[self.column] = value
        self.cell = None

    def _chars(self, value) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, _Shared):
            return self.strings.length(value.index)
        if isinstance(value, _Follower):
            return len(value.master[0])
        return 0

    def _value(self):
        """What the cell shows: its stored value (for a formula, the result Excel cached, as
        pandas reads it); a formula never calculated (no stored value) as its text."""
        if self.formula and self.f_attrib.get("t") == "shared":
            self._keep_master()
        stored = self._stored()
        if stored is not None or not (self.formula or self.f_attrib):
            return stored
        if self.formula:
            return self.formula if self.formula.startswith("=") else "=" + self.formula
        group = self.f_attrib.get("si")
        if self.f_attrib.get("t") == "shared" and group in self.masters and self.cell.get("r"):
            master = self.masters[group]
            self.translated_chars += len(master[0])
            if self.translated_chars > self.limits.max_record_chars:
                raise BudgetError(f"{self.path}: shared formulas without a stored value translate "
                                  f"to more than {self.limits.max_record_chars} characters, by cell "
                                  f"{self._ref()} ({limit_hint('max_record_chars')})")
            return _Follower(group, master, self.cell["r"])
        return None  # a data table or a shared formula's cell never calculated: empty

    def _stored(self):
        """The value the cell stores (for a formula cell, its cached result)."""
        kind = self.cell.get("t", "n")
        if kind == "inlineStr":
            return unescape_ooxml("".join(self.inline)) if self.inline is not None else None
        raw = self.value_text
        if raw is None or (raw == "" and kind != "str"):  # <v/>: only a text result is empty
            return None
        if kind == "s":
            return self._shared(raw)
        if kind == "b":
            return {"1": True, "0": False}.get(raw.strip(), raw)
        if kind == "str":  # a formula's text result, escaped as any string
            return unescape_ooxml(raw)
        if kind in ("e", "d"):
            return raw
        return self._number(raw)

    def _keep_master(self) -> None:
        """Keep a shared formula's first cell (its text and where it is) for the other cells,
        where it is no longer than Excel allows."""
        group = self.f_attrib.get("si")
        if group is None or not self.cell.get("r"):
            return
        self.master_chars += len(self.formula) + len(group)
        if self.master_chars > self.limits.max_shared_strings_bytes:
            raise BudgetError(f"{self.path}: shared formulas hold more than "
                              f"{self.limits.max_shared_strings_bytes} characters "
                              f"({limit_hint('max_shared_strings_bytes')})")
        if len(self.formula) <= _MAX_FORMULA_CHARS:
            text = self.formula if self.formula.startswith("=") else "=" + self.formula
            self.masters[group] = (text, self.cell["r"])

    def _shared(self, raw: str) -> _Shared:
        index = _small_int(raw, 10)
        if index is None or index >= len(self.strings):
            raise TableError(f"{self.path}: cell {self._ref()} names shared string {raw[:20]!r} of "
                             f"{len(self.strings)}")
        return _Shared(index)

    def _number(self, raw: str):
        text = raw.strip()
        if not _NUMBER.fullmatch(text):
            return raw  # not a number: the stored text
        number = float(text)
        if not math.isfinite(number):
            return raw  # 1e309: the text, not inf
        duration = self.styles.kind(self.cell.get("s"))
        if duration is not None:
            return self._date(number, duration)
        if _INTEGER.fullmatch(text):  # int(number), not int(text): 5000 digits is no error here
            return int(number) if abs(number) < _EXACT_INT else raw
        return number

    def _date(self, number: float, duration: bool):
        from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

        try:
            return from_excel(number, CALENDAR_MAC_1904 if self.date1904 else CALENDAR_WINDOWS_1900,
                              timedelta=duration)
        except (ValueError, OverflowError):
            return number

    # -- values handed on
    def resolve(self, value):
        """A cell's value as the reader yields it (shared strings decoded, followers translated)."""
        if isinstance(value, _Shared):
            return self.strings[value.index]
        if isinstance(value, _Follower):
            return self._translate(value)
        return value

    def _translate(self, follower: _Follower) -> str | None:
        from openpyxl.formula.tokenizer import TokenizerError
        from openpyxl.formula.translate import Translator, TranslatorError

        failures = (TranslatorError, TokenizerError, ValueError, IndexError, KeyError)
        master, translator = self._translators.get(follower.group, (None, None))
        if master is not follower.master:  # tokenised once per group (and again if redefined)
            try:
                translator = Translator(follower.master[0], origin=follower.master[1])
            except failures:
                translator = False
            self._translators[follower.group] = (follower.master, translator)
        if translator is False:
            return None
        try:
            return translator.translate_formula(follower.ref)
        except failures:
            return None


def _sheet_rows(book: _Workbook, parts: _Parts, limits: Limits) -> Iterator[tuple[list, str]]:
    """Rows with at least one value, trailing empty cells dropped, with their sheet row number."""
    strings = _Strings(limits)
    if parts.strings is not None:
        for _ in _stream(book, parts.strings, strings):
            pass
    target = _SheetTarget(strings, _styles(book, parts.styles), parts.date1904, limits,
                          limits.unpacked_budget(book.size))
    for _ in _stream(book, parts.sheet, target):
        done, target.done = target.done, []
        for number, cells in done:
            if cells:
                values = [None] * max(cells)
                for column, value in cells.items():
                    values[column - 1] = target.resolve(value)
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
