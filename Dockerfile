# pushpop in a container, for docker-compose.yml and deploy/k8s.
#
# The image holds only the app (gateway + actor host, `pushpop serve --runtime dapr`
# with PUSHPOP_DAPR_SIDECAR=external): daprd, placement and scheduler run in their
# own containers (the official Dapr images), as Dapr is meant to be deployed.
#
#   docker build -t pushpop .                   # the app
#   docker build -t pushpop-locust --target locust .   # the same plus Locust (load tests)

FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/pushpop
COPY pyproject.toml README.md ./
COPY actor_service ./actor_service
COPY api ./api
COPY load_tests ./load_tests
COPY benchmarks ./benchmarks
COPY components ./components
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home pushpop
USER 10001
# Dapr mode behind a sidecar in the same network namespace (Compose: network_mode
# "service:app"; Kubernetes: the injected daprd container of the pod).
ENV PUSHPOP_RUNTIME=dapr \
    PUSHPOP_DAPR_SIDECAR=external \
    PUSHPOP_HOST=0.0.0.0 \
    PUSHPOP_PORT=8000 \
    DAPR_HTTP_PORT=3500 \
    DAPR_GRPC_PORT=50001
EXPOSE 8000
# liveness only: /ready also needs the sidecar, which starts after this container
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
CMD ["pushpop", "serve"]

FROM app AS locust
USER root
RUN pip install ".[bench]"
USER 10001
EXPOSE 8089 5557
CMD ["locust", "-f", "load_tests/locustfile.py", "--class-picker"]
