"""Reference servers the harness runs beside the full stack, with the same load generator."""
