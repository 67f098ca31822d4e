"""Devices that publish over real MQTT: road weather stations, home sensors, fleets, faulty devices, replays.

Models (road.py, home.py, the replay parsers) are pure functions of simulated time or of a file,
testable without a broker; publisher.py is the one way they reach the broker.
"""

from __future__ import annotations

import math
import zlib
from datetime import datetime

_MASK = (1 << 64) - 1


def seed_of(*parts: object) -> int:
    """A stable 64-bit seed from strings and numbers (Python's hash() changes between runs)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return (zlib.crc32(text) << 32) | zlib.adler32(text)


def _mix(x: int) -> int:
    # splitmix64 finaliser: a cheap, well-spread integer hash.
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class Noise:
    """Deterministic noise: the same seed, stream and time always give the same value."""

    __slots__ = ("_key", "_phases")

    def __init__(self, seed: object, stream: str) -> None:
        self._key = seed_of(seed, stream)
        self._phases = [2 * math.pi * self.unit(i) for i in range(4)]

    def unit(self, n: int) -> float:
        """A uniform number in [0, 1) for integer n."""
        return _mix(self._key ^ _mix(n & _MASK)) / 2.0**64

    def white(self, t: datetime, scale: float) -> float:
        """Uniform in [-scale, scale], a new value for every second of simulated time."""
        return scale * (2.0 * self.unit(int(t.timestamp())) - 1.0)

    def wander(self, t: datetime, amplitude: float) -> float:
        """A slow smooth wobble within +-amplitude (periods of about 3 h and 50 min)."""
        h = t.timestamp() / 3600.0
        return amplitude * (
            0.6 * math.sin(2 * math.pi * h / 3.1 + self._phases[0])
            + 0.4 * math.sin(2 * math.pi * h / 0.83 + self._phases[1])
        )
