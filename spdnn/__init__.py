"""spdnn: a graph-based network design compiler."""
__version__ = "0.1.0"
