"""What every benchmark script shares: the commit its figures belong to."""

from __future__ import annotations

import subprocess
from pathlib import Path


def commit_sha() -> str:
    """Short SHA of HEAD, or "unknown" outside a repository with commits."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() or "unknown"
