"""Thin HTTP adapters over groups.services and groups.selectors, one module per topic."""
