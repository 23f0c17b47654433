"""Hardware in the loop: what stands between the harness and a card in a PC/SC reader.

- :mod:`~harness.hil.pcsc` -- the PC/SC transport (pyscard); every card behind it counts as
  physical.
- :mod:`~harness.hil.identity` -- a card's identity, read with free commands only.
- :mod:`~harness.hil.guard` -- the one place that decides what may be sent to a card.
- :mod:`~harness.hil.session` -- one identified, guarded and recorded card in a named reader
  (the HIL suite's :class:`~harness.hil.session.HilCard`).
- :mod:`~harness.hil.report` -- the HIL report: identity, latency per command.
- :mod:`~harness.hil.floor` -- the tap's tries floor: the guard's tries check, command by
  command, for an app's own traffic.
- :mod:`~harness.hil.tap` -- ``myna-hil tap``: a vpcd slot relayed to a card in a reader,
  guarded by the floor, recorded as a trace.

The package imports nothing itself: the guard and identity are used by every scenario run,
the PC/SC transport only where pyscard is installed.
"""
