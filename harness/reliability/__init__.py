"""Reliability evidence: tearing (SIGKILL of ``myna-emu serve`` mid-command) and soak runs.

Both start their own emulator processes in vpcd slots they are given, and talk to them
through pcscd like any PC/SC client. ``myna-hil soak`` is the command-line entry point.
"""
