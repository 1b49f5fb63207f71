"""Parameter tuners: search, oracle and learned prediction of encoder settings.

Image tuners (what :func:`precodec.optimize` uses):

* :mod:`precodec.tuners.space` - the parameter space: configurations
  (backend + subsampling + progressive) times quality;
* :mod:`precodec.tuners.features` - cheap image features (a few ms);
* :mod:`precodec.tuners.predictor` - the shipped ONNX models predicting, per
  configuration, SSIMULACRA2 and size as functions of quality;
* :mod:`precodec.tuners.search` - the learned path (predict, verify,
  correct), the bisection baseline and the oracle.

Zstd tuners live in :mod:`precodec.tuners.zstd`.
"""
