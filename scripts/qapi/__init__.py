"""QAPI schema parser and generators for minivm (driven by scripts/qapi-gen.py)."""
