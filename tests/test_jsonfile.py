"""bench/jsonfile.py: results files read and written plain or gzip-compressed, by their names."""

import gzip
import json
import math

import pytest

from cdcodec.bench.jsonfile import read_json, write_json

DOCUMENT = {"schema": "cdcodec-bench/1", "measurements": [{"image": "kodim01", "psnr": 31.25, "bytes": 4063}]}


@pytest.mark.parametrize("name", ["results.json", "results.json.gz"])
def test_a_written_document_reads_back_the_same(tmp_path, name):
    path = tmp_path / "deeper" / name
    write_json(path, DOCUMENT)
    assert read_json(path) == DOCUMENT
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left behind


def test_a_gz_name_is_written_compressed_and_a_plain_name_plain(tmp_path):
    write_json(tmp_path / "a.json", DOCUMENT)
    write_json(tmp_path / "a.json.gz", DOCUMENT)
    plain = (tmp_path / "a.json").read_bytes()
    assert json.loads(plain) == DOCUMENT
    assert gzip.decompress((tmp_path / "a.json.gz").read_bytes()) == plain


def test_the_compressed_bytes_do_not_depend_on_when_they_were_written(tmp_path):
    write_json(tmp_path / "first.json.gz", DOCUMENT)
    write_json(tmp_path / "second.json.gz", DOCUMENT)
    assert (tmp_path / "first.json.gz").read_bytes() == (tmp_path / "second.json.gz").read_bytes()


def test_a_value_json_cannot_hold_is_refused_and_the_old_file_kept(tmp_path):
    path = tmp_path / "r.json.gz"
    write_json(path, DOCUMENT)
    with pytest.raises(ValueError):
        write_json(path, {"psnr": math.inf})
    assert read_json(path) == DOCUMENT


def test_a_gz_name_over_plain_json_is_an_error_not_a_wrong_document(tmp_path):
    path = tmp_path / "mislabelled.json.gz"
    path.write_text(json.dumps(DOCUMENT))
    with pytest.raises(OSError):
        read_json(path)
