"""Times in response models: a datetime field written as core.timeparse.utc_z writes it (the one time format of
every response), whatever zone the value came in."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer

from core.timeparse import utc_z

UtcTime = Annotated[datetime, PlainSerializer(utc_z, return_type=str, when_used="json")]
