"""Export trained layers and models to other runtimes.

:mod:`rnnkit.export.onnx` writes a :class:`~rnnkit.layers.Recurrent` layer or a
sequence model as a graph of standard ONNX operators (RNN/LSTM/GRU) and runs it
with ONNX Runtime::

    from rnnkit.export import export_onnx, OnnxRunner
    export_onnx(model, "model.onnx")
    logits = OnnxRunner("model.onnx").run(x, lengths=lengths)

Importing this package imports neither onnx nor onnxruntime; they are loaded by
the functions that need them (``pip install "rnnkit[onnx]"``).
"""

from rnnkit.export.onnx import DEFAULT_OPSET, MIN_OPSET, OnnxRunner, export_onnx, run_onnx

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "OnnxRunner", "export_onnx", "run_onnx"]
