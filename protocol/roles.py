"""The roles a model can play; each has its own model route in the configuration."""

from typing import Literal

Role = Literal["plan", "build", "explore", "test", "rca"]
ROLES: tuple[Role, ...] = ("plan", "build", "explore", "test", "rca")
