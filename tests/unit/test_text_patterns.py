"""The API's text patterns and the domain's text rule refuse exactly the same characters.

If the schema let through a character the domain refuses, a request the OpenAPI document
calls valid would be refused (422); if it refused one the domain takes, the document
would say less than the API does. Checked over every code point of the running Python's
Unicode (but the lone surrogates, which no JSON text decodes to).
"""

from __future__ import annotations

import re
import unicodedata

import pytest

from openticket.domain.shared import refused_character
from openticket.entrypoints.http.schemas import LINE_PATTERN, TEXT_PATTERN

CODE_POINTS = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


@pytest.mark.parametrize(("pattern", "multiline"), [(LINE_PATTERN, False), (TEXT_PATTERN, True)])
def test_the_schema_refuses_what_the_domain_refuses(pattern: str, multiline: bool) -> None:
    compiled = re.compile(pattern)
    disagree = [
        f"U+{ord(char):04X}"
        for char in CODE_POINTS
        if (compiled.search(f"a{char}b") is None)
        != (refused_character(char, multiline=multiline) is not None)
        # the schema names format characters of newer Unicode versions too; to an older
        # Python they are unassigned, which is all the difference may be
        and unicodedata.category(char) != "Cn"
    ]
    assert disagree == []


def test_a_trailing_newline_does_not_slip_through_the_end_anchor() -> None:
    assert re.search(LINE_PATTERN, "name\n") is None
    assert re.search(TEXT_PATTERN, "two\nlines") is not None
