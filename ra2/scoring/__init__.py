"""Damage scoring: DenseNet regressors on joint crops, 5-fold ensembles, zero thresholds, aggregation.

Library entry points (TensorFlow is imported only inside them):
``train_regressors`` (:mod:`ra2.scoring.train`), ``Ensemble`` (:mod:`ra2.scoring.ensemble`).
"""
