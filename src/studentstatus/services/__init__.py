"""Use cases (services): registration, verification, numbers, changes, monitoring.

Each service takes a :class:`~studentstatus.services.runtime.Runtime` (store,
clock, rng, policy, calendar) and an operator, checks the operator's role and
scope, and does its work in units of work. The CLI is a thin layer over them.
"""
