"""Forms for groups, one module per topic (membership, meetings)."""
