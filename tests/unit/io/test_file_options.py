"""source.separator and source.encoding: read what they say, and name them when a file needs them."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from opslens.errors import SourceError
from opslens.io.sources.files import read_file

FRAME = pl.DataFrame({"route": ["Köln", "Zürich"], "minutes": [1.5, 2.5]})


@pytest.mark.parametrize(("separator", "shown"), [(";", "';'"), ("\t", '"\\t"'), ("|", "'|'")])
def test_wrong_separator_names_the_right_one(tmp_path: Path, separator: str, shown: str) -> None:
    path = tmp_path / "t.csv"
    FRAME.write_csv(path, separator=separator)
    with pytest.raises(SourceError) as err:
        read_file(path)
    assert err.value.fix == f"set source.separator: {shown}"
    assert read_file(path, separator=separator).equals(FRAME)


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "utf-16"])
def test_encodings_are_read_and_named(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(FRAME.write_csv().encode(encoding))
    with pytest.raises(SourceError, match=r"set source\.encoding to the file's encoding"):
        read_file(path)
    assert read_file(path, encoding=encoding).equals(FRAME)


def test_a_one_column_file_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pl.DataFrame({"minutes": [1.0, 2.0]}).write_csv(path)
    assert read_file(path).shape == (2, 1)
