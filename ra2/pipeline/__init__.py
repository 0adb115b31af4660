"""The whole job, used by the command line, ``ra2 run``, the demo, the notebook and the tests.

- :mod:`ra2.pipeline.films`: a folder's films, each read once and detected; what happened to each
  (:class:`~ra2.pipeline.films.DetectionRecord`). Training and prediction walk this same road.
- :mod:`ra2.pipeline.train`: ``Trainer(profile).fit(train_dir, models_dir)`` -> the training summary.
- :mod:`ra2.pipeline.predict`: ``Predictor.load(models_dir).predict(test_dir)`` ->
  :class:`~ra2.pipeline.predict.PredictResult` (predictions, spread, detections, run record): results are
  returned values, never left on the object.

The models folder's file names, its fingerprint and the shipped detectors are in :mod:`ra2.models_folder`;
the container's train-then-predict step (:class:`ra2.challenge_run.ModelStep`) beside ``run_challenge``.
"""
