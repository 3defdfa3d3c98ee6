# syncd container image: a wheel built in one stage, installed into a slim runtime in the next.
#
#   docker build -t syncd .
#   docker run -d --name syncd --stop-timeout 45 -p 127.0.0.1:9108:9108 -v syncd-state:/var/lib/syncd \
#     -v /etc/syncd/syncd.toml:/etc/syncd/syncd.toml:ro -e SYNCD_CONFIG=/etc/syncd/syncd.toml syncd
#
# Config by file (SYNCD_CONFIG) or entirely by environment (SYNCD_<SECTION>__<KEY>); secrets as
# <key>_file pointing at a mounted secret (owned by uid 10001, mode 0600/0400).  --stop-timeout 45:
# a running cycle may take server.shutdown_timeout (30 s) to settle.  State (the SQLite default) lives in the
# /var/lib/syncd volume.  See docs/operations.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# requirements.lock (pip-compile --generate-hashes, see deploy/README.md) pins every runtime dependency
# with its hashes: each build installs the same files
COPY requirements.lock pyproject.toml README.md ./
COPY syncd ./syncd
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels --require-hashes -r requirements.lock \
 && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && cp requirements.lock /wheels/

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATE_DIRECTORY=/var/lib/syncd \
    SYNCD_SERVER__LISTEN=0.0.0.0:9108 \
    SYNCD_LOG__FORMAT=json
RUN groupadd --system --gid 10001 syncd \
 && useradd --system --uid 10001 --gid syncd --home-dir /var/lib/syncd --no-create-home \
      --shell /usr/sbin/nologin syncd \
 && mkdir -p /var/lib/syncd /etc/syncd \
 && chown syncd:syncd /var/lib/syncd \
 && chmod 0700 /var/lib/syncd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels --require-hashes -r /wheels/requirements.lock \
 && pip install --no-cache-dir --no-index --no-deps /wheels/syncd-*.whl \
 && rm -rf /wheels
USER 10001:10001
WORKDIR /var/lib/syncd
VOLUME ["/var/lib/syncd"]
EXPOSE 9108
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 CMD ["syncd", "healthcheck"]
ENTRYPOINT ["syncd"]
CMD ["run"]
