"""Bytes and lines of an input file, on a budget: decompression metered against the compressed
size, lines read with a length cap, text that does not decode refused with its byte offset."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import BudgetError, TableError
from .limits import Limits, limit_hint

STDIN = "-"  # the input name that reads CSV from standard input
# Compressed inputs by the last extension; ``.zip`` is refused (which member?).
COMPRESSIONS = {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}
_OPENERS = {"gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), "bzip2": bz2.BZ2File,
            "xz": lzma.LZMAFile}
# What a broken compressed stream raises (bz2 raises OSError for bad data).
DECOMPRESSION_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
_CHUNK = 1 << 16


class _Metered(io.RawIOBase):
    """A decompressed stream that refuses to yield more than ``budget`` bytes."""

    def __init__(self, stream, budget: int, path: str, limits: Limits):
        self._stream, self._budget, self._path, self._limits = stream, budget, path, limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._stream.readinto(buffer)
        self.count += n
        if self.count > self._budget:
            raise BudgetError(
                f"{self._path}: unpacks to more than {self._budget} bytes ({self._limits.max_expansion}"
                f" times its compressed size or {self._limits.expansion_floor} bytes; "
                f"{limit_hint('max_expansion')} or expansion_floor)")
        return n


def decompression_error(path: str, compression: str, exc: BaseException) -> TableError:
    return TableError(f"{path}: not a readable {compression} file ({type(exc).__name__}: {exc})")


@contextmanager
def open_binary(path: str, compression: str | None, limits: Limits) -> Iterator:
    """The file's bytes (buffered, so ``peek`` works), unpacked and metered where compressed;
    standard input for ``-`` (left open)."""
    if path == STDIN:
        if sys.stdin is None or not hasattr(sys.stdin, "buffer"):  # started with stdin closed
            raise TableError("-: there is no standard input to read (it is closed)")
        stream = sys.stdin.buffer
        yield stream if hasattr(stream, "peek") else io.BufferedReader(stream)
        return
    with open(path, "rb") as raw:
        if compression is None:
            yield raw
            return
        budget = limits.unpacked_budget(os.fstat(raw.fileno()).st_size)
        try:
            unpacked = _OPENERS[compression](raw)
        except DECOMPRESSION_ERRORS as exc:
            raise decompression_error(path, compression, exc) from None
        with unpacked, io.BufferedReader(_Metered(unpacked, budget, path, limits), _CHUNK) as fh:
            yield fh


def detect_encoding(path: str, compression: str | None, raw) -> str:
    """The text encoding from a byte-order mark at the start of ``raw`` (not consumed)."""
    try:
        head = raw.peek(4)[:4]
    except DECOMPRESSION_ERRORS as exc:
        raise decompression_error(path, compression or "gzip", exc) from None
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8-sig"


def _bad_byte(path: str, compression: str | None, encoding: str, limits: Limits) -> tuple[int, int]:
    """Offset and value of the first byte that does not decode (a second, rare pass)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    with open_binary(path, compression, limits) as fh:
        while True:
            chunk = fh.read(_CHUNK)
            pending = decoder.getstate()[0]
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                data = pending + chunk
                return offset - len(pending) + exc.start, data[exc.start] if data else -1
            if not chunk:
                return offset, -1
            offset += len(chunk)


def is_zip(path: str) -> bool:
    if path == STDIN:
        return False
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


class Lines:
    """A text file's lines (endings kept), each at most ``max_record_chars`` long, read lazily.

    ``since_mark`` counts the characters read since the last :meth:`mark`, so a reader can hold
    a record of many lines to the record budget: past it, the next line raises.
    """

    def __init__(self, path: str, compression: str | None, fh, limits: Limits):
        self.path, self._compression, self._fh, self._limits = path, compression, fh, limits
        self.number = 0  # the line last read
        self.since_mark = 0

    def mark(self) -> None:
        self.since_mark = 0

    def __iter__(self) -> Iterator[str]:
        cap = self._limits.max_record_chars
        try:
            while line := self._fh.readline(cap + 1):
                self.number += 1
                self.since_mark += len(line)
                if len(line) > cap:
                    raise BudgetError(f"{self.path}: line {self.number} is longer than {cap} "
                                      f"characters ({limit_hint('max_record_chars')})")
                if self.since_mark > cap:
                    raise BudgetError(f"{self.path}: the record that ends on line {self.number} "
                                      f"holds more than {cap} characters "
                                      f"({limit_hint('max_record_chars')})")
                if "\x00" in line:
                    raise TableError(f"{self.path}: NUL byte on line {self.number}: a binary "
                                     "file, not a text table")
                yield line
        except UnicodeDecodeError as exc:
            raise self._not_text(exc) from None
        except DECOMPRESSION_ERRORS as exc:
            if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile) and exc.errno:
                raise  # a real I/O error, not a broken stream
            raise decompression_error(self.path, self._compression or "gzip", exc) from None

    def _not_text(self, exc: UnicodeDecodeError) -> TableError:
        if self.path == STDIN:  # cannot be read twice
            offset, byte = None, exc.object[exc.start] if exc.start < len(exc.object) else -1
        else:
            offset, byte = _bad_byte(self.path, self._compression, self._fh.encoding, self._limits)
        what = f"byte 0x{byte:02X}" if byte >= 0 else "an incomplete character"
        where = f" at byte offset {offset}" if offset is not None else ""
        hint = "; an XLSX workbook? name it .xlsx" if is_zip(self.path) else "; save it as UTF-8"
        return TableError(f"{self.path}: not UTF-8 text ({what}{where}){hint}")


@contextmanager
def text_lines(path: str, compression: str | None, limits: Limits) -> Iterator[Lines]:
    """Decoded lines of a text file (see :class:`Lines`) while the context is open."""
    with open_binary(path, compression, limits) as raw:
        fh = io.TextIOWrapper(raw, encoding=detect_encoding(path, compression, raw), newline="")
        try:
            yield Lines(path, compression, fh, limits)
        finally:
            fh.detach()  # the binary stream is closed by open_binary (standard input stays open)
