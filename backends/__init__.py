"""Exporters: IR graphs -> torch modules, ONNX, resolved specs (installed as ``spdnn.backends``)."""
