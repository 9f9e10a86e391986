"""Builders of hostile and odd input files for the security tests and benchmarks/hostile_inputs.py.

Bombs are written by streaming (gzip, bz2, zip members written piece by piece), so a file that
unpacks to gigabytes costs the test a few megabytes and seconds.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

MAIN_NS = _MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = _R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '</Types>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/officeDocument" Target="xl/workbook.xml"/>'
    '</Relationships>')
_WORKBOOK = (f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_MAIN}" xmlns:r="{_R}">'
             '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')


def _workbook_rels(shared: bool, styles: bool) -> str:
    rels = f'<Relationship Id="rId1" Type="{_R}/worksheet" Target="worksheets/sheet1.xml"/>'
    if shared:
        rels += f'<Relationship Id="rId2" Type="{_R}/sharedStrings" Target="sharedStrings.xml"/>'
    if styles:
        rels += f'<Relationship Id="rId3" Type="{_R}/styles" Target="styles.xml"/>'
    return ('<?xml version="1.0" encoding="UTF-8"?><Relationships '
            f'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}</Relationships>')


def inline(ref: str, text: str) -> str:
    """An inline-string cell."""
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'


def row(number: int, *cells: str) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


def write_xlsx(path: Path, rows: Iterable[str] | str, shared_strings: Iterable[str] | str | None = None,
               encoding: str = "utf-8", styles: Iterable[str] | str | None = None,
               workbook: Iterable[str] | str | None = None) -> Path:
    """A minimal workbook whose first sheet's ``<sheetData>`` holds ``rows`` (XML text, or an
    iterable of XML pieces written one by one), with an optional shared-string table (``<si>``
    pieces) and styles part (the pieces inside ``<styleSheet>``). ``workbook`` replaces the
    workbook part's XML. ``encoding`` is the XML encoding of the sheet and the shared strings."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _ROOT_RELS)
        _stream_member(zf, "xl/workbook.xml", _pieces(_WORKBOOK if workbook is None else workbook),
                       "utf-8", declare=workbook is not None)
        zf.writestr("xl/_rels/workbook.xml.rels",
                    _workbook_rels(shared_strings is not None, styles is not None))
        if styles is not None:
            _stream_member(zf, "xl/styles.xml",
                           [f'<styleSheet xmlns="{_MAIN}">', *_pieces(styles), "</styleSheet>"], "utf-8")
        _stream_member(zf, "xl/worksheets/sheet1.xml",
                       [f'<worksheet xmlns="{_MAIN}"><sheetData>', *_pieces(rows),
                        "</sheetData></worksheet>"], encoding)
        if shared_strings is not None:
            _stream_member(zf, "xl/sharedStrings.xml",
                           [f'<sst xmlns="{_MAIN}">', *_pieces(shared_strings), "</sst>"], encoding)
    return path


def _pieces(xml: Iterable[str] | str) -> Iterable[str]:
    return [xml] if isinstance(xml, str) else xml


def _stream_member(zf: zipfile.ZipFile, name: str, pieces: Iterable[str], encoding: str,
                   declare: bool = True) -> None:
    declaration = f'<?xml version="1.0" encoding="{encoding.upper()}"?>' if declare else ""
    with zf.open(name, "w", force_zip64=True) as member:
        member.write(declaration.encode(encoding))
        for piece in pieces:
            member.write(piece.encode(encoding).removeprefix(b"\xff\xfe").removeprefix(b"\xfe\xff"))


def replace_member(path: Path, name: str, pieces: Iterable[str]) -> None:
    """Rewrite a workbook with member ``name`` replaced by ``pieces`` of XML (UTF-8)."""
    with zipfile.ZipFile(path) as zf:
        kept = {n: zf.read(n) for n in zf.namelist() if n != name}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in kept.items():
            zf.writestr(member, data)
        _stream_member(zf, name, pieces, "utf-8", declare=False)


def workbook_relationships(shared: bool = False, styles: bool = False) -> str:
    """The relationships of :func:`write_xlsx`'s workbook part."""
    return _workbook_rels(shared, styles)


def patch_member(path: Path, name: str, flag: int | None = None, method: int | None = None) -> None:
    """Set a member's general-purpose flag bits or compression method in both of its headers
    (zipfile cannot write an encrypted member or one packed with an unknown method)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
        start = zf.start_dir
    central = data.index(b"PK\x01\x02", start)
    while True:
        size = struct.unpack("<H", data[central + 28:central + 30])[0]
        extra, comment = struct.unpack("<HH", data[central + 30:central + 34])
        if data[central + 46:central + 46 + size].decode() == name:
            break
        central += 46 + size + extra + comment
    for at, flag_at, method_at in ((local, 6, 8), (central, 8, 10)):
        if flag is not None:
            data[at + flag_at:at + flag_at + 2] = struct.pack("<H", flag)
        if method is not None:
            data[at + method_at:at + method_at + 2] = struct.pack("<H", method)
    path.write_bytes(bytes(data))


def compressed(path: Path, pieces: Iterable[bytes]) -> Path:
    """A file packed by its extension (.gz, .bz2, .xz), written piece by piece."""
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[path.suffix]
    with opener(path, "wb") as fh:
        for piece in pieces:
            fh.write(piece)
    return path


def repeated(piece: bytes, total: int) -> Iterable[bytes]:
    """``piece`` repeated to ``total`` bytes, in pieces of about a megabyte."""
    block = piece * max(1, (1 << 20) // len(piece))
    written = 0
    while written < total:
        chunk = block[:total - written]
        written += len(chunk)
        yield chunk


def sd_record(name: str, properties: dict[str, str]) -> str:
    """One SD record: a methane molblock named ``name`` and its properties."""
    block = (f"{name}\n     RDKit          2D\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n"
             "    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\nM  END\n")
    return block + "".join(f">  <{k}>\n{v}\n\n" for k, v in properties.items())
