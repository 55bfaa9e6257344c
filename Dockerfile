# provider-gateway: one stateless container; state lives in PostgreSQL and Redis
# (or, for a single instance, SQLite in the /var/lib/provider-gateway volume).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY provider_gateway ./provider_gateway
# Every dependency ships wheels for this platform: no compiler in either stage.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/provider-gateway --shell /usr/sbin/nologin gateway \
    && mkdir -p /var/lib/provider-gateway \
    && chown gateway /var/lib/provider-gateway
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GATEWAY_DATA_DIR=/var/lib/provider-gateway
USER gateway
VOLUME ["/var/lib/provider-gateway"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["provider-gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
