# syntax=docker/dockerfile:1
# One image for every taskmgr service; the command picks which one runs:
#   python -m user_svc | task_svc | notify_svc | edge_api
# Health probe for any of them: python -m common.healthcheck 127.0.0.1:PORT  (or an http:// URL)
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# builder: the runtime virtualenv (pinned), and the generated stubs.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# Runtime dependencies: pyproject.toml's [project.dependencies], every version (transitive
# ones too) fixed by requirements.lock. Only these two files are copied first, so this
# layer stays cached while only code changes. The project itself is not pip-installed:
# its code is copied to /app below and found through a .pth file, which keeps the
# migrations' non-Python files and the gen/ path exactly as in the source tree.
COPY pyproject.toml requirements.lock ./
RUN python -m venv /opt/venv \
 && python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > runtime-requirements.txt \
 && /opt/venv/bin/pip install -c requirements.lock -r runtime-requirements.txt \
 && printf '/app\n/app/gen\n' > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/taskmgr.pth"

# Code generators live in a separate virtualenv that never reaches the runtime image.
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install -c requirements.lock \
      grpcio-tools mypy-protobuf googleapis-common-protos

# Same protoc invocation as the Makefile's gen/descriptors.pb target (a test compares them):
# Python and gRPC stubs, mypy stubs, and the descriptor set with source info that
# edge_api reads for its routes and its OpenAPI document.
COPY protos ./protos
RUN mkdir gen \
 && PATH="/opt/tools/bin:$PATH" /opt/tools/bin/python -m grpc_tools.protoc \
      -Iprotos -I"$(/opt/tools/bin/python -c 'import google.api.annotations_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')" \
      --python_out=gen --grpc_python_out=gen --mypy_out=quiet:gen --mypy_grpc_out=quiet:gen \
      --include_imports --include_source_info --descriptor_set_out=gen/descriptors.pb \
      $(find protos -name '*.proto')

# ---------------------------------------------------------------------------
# runtime: interpreter, virtualenv, code and stubs; no compilers, no dev tools.
FROM ${PYTHON_IMAGE} AS runtime
# Services are reached from other containers, so they listen on every interface.
# VAR_DIR holds development keys and SQLite files when no key or database URL is set.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GRPC_HOST=0.0.0.0 \
    EDGE_HOST=0.0.0.0 \
    VAR_DIR=/var/lib/taskmgr

RUN groupadd --system --gid 10001 taskmgr \
 && useradd --system --uid 10001 --gid taskmgr --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin taskmgr \
 && mkdir -p /var/lib/taskmgr \
 && chown taskmgr:taskmgr /var/lib/taskmgr

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/gen /app/gen
COPY common /app/common
COPY user_svc /app/user_svc
COPY task_svc /app/task_svc
COPY notify_svc /app/notify_svc
COPY edge_api /app/edge_api
# Bytecode compiled at build time: the root filesystem may be read-only at run time.
RUN python -m compileall -q /app

WORKDIR /app
USER 10001:10001
EXPOSE 8000 50051 50052 50053
# No HEALTHCHECK here: each service listens on its own port, so compose and Kubernetes
# declare the probe per service.
CMD ["python", "-m", "edge_api"]
