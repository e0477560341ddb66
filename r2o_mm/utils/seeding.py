"""Seeds that are functions of counters, not of a process's running state."""
from __future__ import annotations

import numpy as np


def mix_seed(*values: int) -> int:
    """A 64-bit seed from several non-negative integers (numpy's SeedSequence
    mixes them: neighbouring inputs give unrelated streams)."""
    state = np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 32 | int(state[1])
