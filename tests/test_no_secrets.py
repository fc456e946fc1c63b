"""No credentials in code, configs or docs: AWS access comes from Airflow connections or the
instance role. Scans every file git tracks (and untracked, unignored ones)."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret key assignment": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?(?!testing\b|test\b|dummy\b)[A-Za-z0-9/+]{30,}"),
    "private key": re.compile(r"-----BEGIN (RSA |OPENSSH |EC )?PRIVATE KEY-----"),
}


def _files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.split()
    for name in out:
        path = REPO / name
        if path.is_file() and path.stat().st_size < 2_000_000 and path.suffix not in {".fits", ".h5", ".parquet", ".png"}:
            yield path


def test_patterns_catch_what_they_should():
    assert PATTERNS["AWS access key id"].search("key = AKIAABCDEFGHIJKLMNOP")
    assert PATTERNS["AWS secret key assignment"].search("aws_secret_access_key = " + "a" * 40)
    assert not PATTERNS["AWS secret key assignment"].search("aws_secret_access_key=testing")


def test_no_credentials_in_the_repository():
    found = []
    for path in _files():
        text = path.read_text(errors="ignore")
        for what, pattern in PATTERNS.items():
            if path.name == Path(__file__).name:
                continue
            for m in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}: {what}: {m.group(0)[:24]}...")
    assert not found, "\n".join(found)
