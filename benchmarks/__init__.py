"""``make bench``: imagerec against the usual way, measured side by side, and the report.

Modules, in the order a run uses them: ``plan`` (what to measure, paths), ``photos``,
``processes`` and ``children`` (fresh processes and what runs inside them), ``loadgen``
(HTTP servers and clients), ``measure`` and ``served`` (the measurements), ``onnx_eval``,
``machine``, ``targets``, ``cost``, ``chart``, ``findings`` and ``report`` (the Markdown,
rendered from ``results.json`` alone). ``python -m benchmarks`` runs it all.
"""
