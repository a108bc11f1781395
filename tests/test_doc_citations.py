"""Every document the code and docs cite is in the repository, and every cited section exists."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sources():
    pats = ["hpps_d2/**/*.py", "tools/*.py", "bench/*.py", "tests/**/*.py", "configs/**/*.yaml", "*.md", "docs/*.md", "datasets/*.md"]
    for pat in pats:
        for path in glob.glob(os.path.join(REPO, pat), recursive=True):
            with open(path, encoding="utf-8") as f:
                yield os.path.relpath(path, REPO), f.read()


def test_cited_docs_exist_and_cited_sections_are_there():
    with open(os.path.join(REPO, "docs", "datasets.md"), encoding="utf-8") as f:
        sections = set(re.findall(r"^## (\d+)\.", f.read(), flags=re.M))
    missing = []
    for rel, text in _sources():
        if rel == os.path.join("tests", "test_doc_citations.py"):
            continue
        for doc in set(re.findall(r"\bdocs/[A-Za-z0-9_-]+\.md\b", text)):
            if not os.path.exists(os.path.join(REPO, doc)):
                missing.append(f"{rel}: {doc}")
        for sec in re.findall(r"docs/datasets\.md,?\s+section\s+(\d+)", text):
            if sec not in sections:
                missing.append(f"{rel}: docs/datasets.md section {sec}")
    assert not missing, "citations of documents or sections not in the repository:\n" + "\n".join(sorted(missing))
