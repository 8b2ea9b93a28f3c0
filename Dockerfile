# The operator's image (`make image`); the REST gateway runs from it too (args: [gateway]).
#
# Two stages on one pinned base: the first installs the operator into a virtualenv, the second
# holds only that virtualenv on a clean base from which pip, setuptools and wheel are removed.
# No compiler is needed (every dependency ships wheels) and none is in the image. It runs as a
# numeric non-root user, so Pod Security's `restricted` level and runAsNonRoot accept it, on a
# read-only root file system (it writes nothing: PYTHONDONTWRITEBYTECODE).
# Pin the base by digest as well where your registry lets you check it:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:... .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
RUN python -m pip uninstall --yes pip setuptools wheel \
    && rm -rf /root/.cache
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["/opt/venv/bin/connector-operator"]
