"""The reference FitIQ target: the consultation protocol's server twin, with latency profiles,
fault injection and ground-truth timings. Entry points: ``loadtest serve`` (``command.serve``),
``python -m loadtest.target`` and :class:`loadtest.target.process.TargetProcess`.
"""
