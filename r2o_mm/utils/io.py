"""Small file helpers shared by the tools."""
from __future__ import annotations

import json
import os


def write_json(path: str, payload: dict):
    """Writes ``payload`` to ``path`` atomically (temporary file, then rename),
    so a reader never sees a half-written metrics file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f'{path}.tmp-{os.getpid()}'
    with open(temporary, 'w') as handle:
        json.dump(payload, handle, indent=2, default=str)
    os.replace(temporary, path)
