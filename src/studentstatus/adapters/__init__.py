"""Storage adapters: in-memory, files and SQL (each implements :mod:`studentstatus.ports`)."""
