"""JSON Schemas shipped with studentstatus (handover format)."""
