"""Every ``--json`` document has the top-level keys docs/CLI-JSON.md lists for it, and ``ok``/``exit_code``
agree with the process's exit code."""
from __future__ import annotations

import json
import os
import re

import pytest

from .conftest import EXAMPLES, LENET, ROOT

WEIGHTS = os.path.join(EXAMPLES, "weights", "lenet.npz")
RUNS = {
    "error (any command)": ["summary", "missing_model.py"],
    "`summary`": ["summary", LENET],
    "`weights FILE`": ["weights", WEIGHTS],
    "`weights FILE --model MODEL`": ["weights", WEIGHTS, "--model", LENET],
    "`check`": ["check", LENET, "--backends", "reference"],
    "`ops`": ["ops"],
    "`bench`": ["bench", LENET, "--backend", "reference", "-n", "2", "--warmup", "1"],
    "`compare`": ["compare", LENET, "--backends", "reference"],
}


def documented() -> dict:
    """{document: [keys]} from the table in docs/CLI-JSON.md."""
    with open(os.path.join(ROOT, "docs", "CLI-JSON.md")) as f:
        rows = [line.split("|")[1:3] for line in f if line.startswith("| ") and "`" in line.split("|")[2]]
    return {doc.strip(): re.findall(r"`([a-z_]+)`", keys) for doc, keys in rows}


def test_the_doc_lists_every_command_with_json():
    assert set(documented()) == set(RUNS)


@pytest.mark.parametrize("doc", list(RUNS))
def test_json_document_has_the_documented_keys(cli, doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(*RUNS[doc], "--json")
    d = json.loads(out)
    assert list(d) and set(d) == set(documented()[doc]), (sorted(d), err)
    assert d["exit_code"] == rc and d["ok"] is (rc == 0), (rc, d.get("error"))
