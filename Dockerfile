# ra2 challenge submission image. Build: docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t ra2 .
# Local test as the organisers ran it:
#   docker run --network none -v $PWD/train:/train:ro -v $PWD/test:/test:ro -v $PWD/output:/output ra2
# Pin the base image by digest before submitting (docker pull python:3.11-slim-bookworm, then
# docker inspect --format '{{index .RepoDigests 0}}'), as the organisers' example does.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 NO_ALBUMENTATIONS_UPDATE=1
WORKDIR /opt/ra2
COPY pyproject.toml README.md ./
COPY ra2/ ra2/
COPY weights/ weights/
# GPU TensorFlow (CUDA libraries come as pip wheels); CPU hosts still run it, without the GPU.
RUN pip install --upgrade pip && pip install ".[gpu]"
ARG GIT_COMMIT=unknown
RUN echo "$GIT_COMMIT" > /opt/ra2/GIT_COMMIT
COPY run.sh /run.sh
RUN chmod 0755 /run.sh && useradd --create-home --uid 1000 ra2
USER ra2
ENTRYPOINT ["/bin/bash", "/run.sh"]
