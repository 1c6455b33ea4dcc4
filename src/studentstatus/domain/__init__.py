"""The pure domain core: entities, the status machine, numbers, problems, jurisdictions.

Nothing here does I/O, reads a clock or draws random numbers: time comes in as
``today=``/``now=`` arguments, randomness as a :class:`random.Random` passed by
the caller.
"""
