"""The load harness (``make bench``): measures, never asserts. See bench/run.py."""
