"""What a file is, from its bytes: never from the client's word or the file's name alone.

Binary formats by their signature (the `filetype` library); anything else that decodes as
UTF-8 is text, and among texts HTML, SVG/XML and JSON are told apart by their content.
Markdown and CSV cannot be recognised from their bytes (any text is valid Markdown), so a text
is called Markdown or CSV only where the name or the client said so.
"""

from __future__ import annotations

import codecs
import json
import mimetypes
import re

import filetype

# Read this much to decide; JSON is parsed whole only up to JSON_LIMIT.
HEAD_BYTES = 8192
JSON_LIMIT = 2 * 1024 * 1024
OCTET_STREAM = "application/octet-stream"
TEXT_PLAIN = "text/plain"
# Texts only the name or the claim can tell apart from plain text.
TEXT_FLAVOURS = {
    "text/markdown": "text/markdown",
    "text/x-markdown": "text/markdown",
    "text/csv": "text/csv",
    "text/plain": "text/plain",
}
# Types shown as a line diff between versions on the request page.
DIFFABLE = frozenset({"text/plain", "text/markdown", "text/csv", "application/json"})
# Shown inline (preview): raster images only; never SVG or HTML, which could run script.
PREVIEW_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF = "application/pdf"

_HTML = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body|script)\b", re.I | re.S)
_SVG = re.compile(rb"<svg[\s>]", re.I)
_XML = re.compile(rb"^\s*<\?xml\b", re.I)

mimetypes.add_type("text/markdown", ".md")
mimetypes.add_type("text/markdown", ".markdown")


def _is_utf8(head: bytes, complete: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # A head cut in the middle of a character is still text.
        decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def sniff(head: bytes, *, whole: bytes | None = None) -> str:
    """The media type of content starting with `head` (`whole`: all of it, when small)."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if not _is_utf8(head, complete=whole is not None):
        return OCTET_STREAM
    if _HTML.search(head[:1024]):
        return "text/html"
    if _SVG.search(head[:4096]) and (head.lstrip().startswith(b"<") or _XML.search(head)):
        return "image/svg+xml"
    if _XML.search(head):
        return "application/xml"
    if whole is not None and head.lstrip()[:1] in (b"{", b"["):
        try:
            json.loads(whole)
        except ValueError:
            pass
        else:
            return "application/json"
    return TEXT_PLAIN


def named_type(filename: str) -> str | None:
    """What the file's name says it is, or None."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed


def settle(sniffed: str, claims: list[str | None]) -> tuple[str, str | None]:
    """The version's media type, and the claim the content contradicts (or None).

    `claims` are the client's Content-Type and the file name's type; a generic one
    (application/octet-stream, none) claims nothing."""
    media_type = sniffed
    for claim in claims:
        if not claim or claim == OCTET_STREAM:
            continue
        claim = claim.split(";")[0].strip().lower()
        if claim == sniffed:
            continue
        if sniffed == TEXT_PLAIN and claim in TEXT_FLAVOURS:
            media_type = TEXT_FLAVOURS[claim] if media_type == TEXT_PLAIN else media_type
            continue
        if claim.startswith("text/") and sniffed == TEXT_PLAIN:
            continue  # text/x-python and the like: text it is
        if sniffed == "application/json" and claim in TEXT_FLAVOURS:
            continue
        if sniffed == "application/xml" and claim in ("text/xml", "application/xml"):
            continue
        if _same_family_zip(sniffed, claim):
            media_type = claim
            continue
        return sniffed, claim
    return media_type, None


def _same_family_zip(sniffed: str, claim: str) -> bool:
    """Office documents are ZIP files; `filetype` may only see the ZIP."""
    return sniffed == "application/zip" and (
        claim.startswith(
            (
                "application/vnd.openxmlformats-officedocument.",
                "application/vnd.oasis.opendocument.",
            )
        )
        or claim == "application/epub+zip"
    )


def matches(media_type: str, patterns: list[str]) -> bool:
    """Whether a type is one of `patterns` (`application/pdf`, `image/*`, `*/*`)."""
    for pattern in patterns:
        if pattern in ("*", "*/*") or pattern == media_type:
            return True
        if pattern.endswith("/*") and media_type.startswith(pattern[:-1]):
            return True
    return False
