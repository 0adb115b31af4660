"""``ra2 review``: a reader checks the joints the model doubts, in a browser, and the checks become training data.

- :mod:`ra2.review.run` reads what a prediction run left in its folder (``predictions.csv``,
  ``predictions_uncertainty.csv``, ``detections.json``) and ranks the joints by ensemble spread (the flagged ones).
- :mod:`ra2.review.store` keeps the reader's work: ``review_log.jsonl`` (one fsync'ed line per accepted correction)
  and ``reviewed.csv`` (the 90-column challenge file with the corrections applied, rebuilt from the log, atomically).
- :mod:`ra2.review.server` serves the page (``static/``: plain HTML, CSS and JavaScript, no build step) and its
  JSON and PNG endpoints on 127.0.0.1.
- :mod:`ra2.review.export` turns the log into a training folder: ``training.csv`` and ``annotations.json``.

Nothing here imports TensorFlow. ``docs/review.md`` describes the reading workflow.
"""
