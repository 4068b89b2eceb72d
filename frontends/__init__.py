"""Importers: external formats -> verified IR graphs (installed as ``spdnn.frontends``)."""
