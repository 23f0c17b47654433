"""The pytest plugin's parts below its hooks and fixtures (:mod:`harness.pytest_plugin`):
the ``myna_card`` marker (:mod:`harness.plugin.marker`) and the per-test trace
(:mod:`harness.plugin.tracing`). Nothing here imports pytest at module level but the
helpers that fail a test."""
