"""Lambda entry point. The handler and its resolver live in the imagerec package, so the
local server and `imagerec invoke` run exactly this code; importing it loads and warms the
model in the init phase."""

from imagerec.api import handler

__all__ = ["handler"]
