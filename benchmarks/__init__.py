"""``make bench``: imagerec against the usual way, measured side by side, and the report.

Modules, in the order a run uses them: ``plan`` (what to measure, paths), ``photos``,
``processes`` and ``children`` (fresh processes and what runs inside them), ``loadgen``
(HTTP servers and clients), ``measure`` and ``served`` (the measurements), ``onnx_eval``,
``machine``, ``targets``, ``cost``, ``chart``, and ``findings``, ``report_cost`` and ``report``
(the Markdown and the README's speed paragraph, rendered from ``results.json`` alone).
``python -m benchmarks`` runs it all; ``python -m benchmarks.report`` re-renders.
"""
