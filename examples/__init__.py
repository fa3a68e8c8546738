"""Runnable integration examples: a signal publisher and a billing service, on the official CloudEvents SDK."""
