"""Lambda entry point. Building the handler here, at module scope, loads and warms the model in
the init phase; `imagerec serve` and `imagerec invoke` build theirs with the same function."""

from imagerec.compose import load_handler

handler = load_handler()
