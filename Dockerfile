# ra2 challenge submission image (README "Docker"). Build and test it as the organisers ran it:
#   make image        # docker/image.sh build
#   make image-test   # docker/image.sh test: build, run on a phantom challenge, check the output
# BASE: any Debian bookworm image with python3.11 (the default: the official python image pinned by
# digest; docker/image.sh builds a local Debian stand-in where that cannot be pulled). Re-pin with
#   docker pull python:3.11-slim-bookworm && docker inspect --format '{{index .RepoDigests 0}}' python:3.11-slim-bookworm
ARG BASE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16
FROM ${BASE}

# The venv makes both bases alike (Debian's own python3.11 is "externally managed", PEP 668).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NO_ALBUMENTATIONS_UPDATE=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN useradd --create-home --uid 1000 --user-group ra2 \
    && python3.11 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --no-cache-dir pip==26.3
WORKDIR /opt/ra2
# Dependencies first (their layer, CUDA wheels included, survives changes to ra2/): the pinned ones of
# pyproject.toml plus the `gpu` extra (GPU TensorFlow; CPU hosts still run it, without the GPU).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['gpu']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt
COPY README.md ./
COPY ra2/ ra2/
RUN pip install --no-cache-dir --no-deps . && pip check && rm -rf build ra2.egg-info
COPY weights/ weights/
COPY run.sh /run.sh
ARG GIT_COMMIT=unknown
RUN echo "$GIT_COMMIT" > /opt/ra2/GIT_COMMIT && chmod 0755 /run.sh
USER 1000:1000
ENTRYPOINT ["/bin/bash", "/run.sh"]
