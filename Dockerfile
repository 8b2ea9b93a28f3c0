# The operator's image: `make image`. Runs as a non-root user on a read-only root file system.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . && rm -rf /root/.cache
USER 65532:65532
ENTRYPOINT ["python", "-m", "connector_operator"]
