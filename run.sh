#!/bin/bash
# Container entry point (ENTRYPOINT ["/bin/bash", "/run.sh"]): train from /train, predict /test,
# write /output/predictions.csv (+ run_summary.json). Runs as a non-root user on a read-only image:
# scratch (work folder, library caches) goes to $TMPDIR or /tmp, nothing else is written.
# Overridable for local runs: RA2_TRAIN, RA2_TEST, RA2_OUTPUT, RA2_WORK, RA2_PROFILE, RA2_DETECTORS,
# RA2_PYTHON (the interpreter; default: python on PATH).
set -uo pipefail
SCRATCH="${TMPDIR:-/tmp}"
export HOME="${HOME:-$SCRATCH}"
[ -w "$HOME" ] || export HOME="$SCRATCH"
export MPLCONFIGDIR="$SCRATCH/ra2-mpl" KERAS_HOME="$SCRATCH/ra2-keras" TF_CPP_MIN_LOG_LEVEL=2 NO_ALBUMENTATIONS_UPDATE=1
TRAIN="${RA2_TRAIN:-/train}"
TEST="${RA2_TEST:-/test}"
OUTPUT="${RA2_OUTPUT:-/output}"
WORK="${RA2_WORK:-$SCRATCH/ra2-work}"
# The image's shipped detectors (Dockerfile: COPY weights/ into /opt/ra2); `ra2 run` reads RA2_DETECTORS.
if [ -z "${RA2_DETECTORS:-}" ] && [ -d /opt/ra2/weights/detectors ]; then
    export RA2_DETECTORS=/opt/ra2/weights/detectors
fi
echo "ra2 run.sh: git $(cat /opt/ra2/GIT_COMMIT 2>/dev/null || echo unknown), $(date -u +%FT%TZ)"
nvidia-smi 2>/dev/null || echo "nvidia-smi: no GPU visible"
exec "${RA2_PYTHON:-python}" -m ra2 run --train "$TRAIN" --test "$TEST" --output "$OUTPUT" --work "$WORK"
