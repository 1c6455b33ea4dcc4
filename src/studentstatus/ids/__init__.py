"""Identity documents (placeholder)."""
