"""Test kit for hosts and integrators (needs the ``testing`` extra: hypothesis, pytest).

* :mod:`studentstatus.testing.strategies` — hypothesis strategies for numbers,
  kindergartens, children, records and change sequences;
* :mod:`studentstatus.testing.machine` — a stateful machine over the status rules;
* :mod:`studentstatus.testing.contract` — the storage-adapter conformance kit.
"""
