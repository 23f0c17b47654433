"""The pytest plugin's parts below its hooks and fixtures (:mod:`harness.pytest_plugin`):
the ``myna_card`` marker (:mod:`harness.plugin.marker`) and the per-test trace
(:mod:`harness.plugin.tracing`). Neither imports pytest: they are usable, and tested, as
plain functions."""
