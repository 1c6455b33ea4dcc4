"""Stateful test of the status machine: random legal and illegal changes on one record."""

from __future__ import annotations

from hypothesis import settings

from studentstatus.testing.machine import StatusMachine

TestStatusMachine = StatusMachine.TestCase
TestStatusMachine.settings = settings(max_examples=500, stateful_step_count=20, deadline=None)
