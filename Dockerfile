# Placewatch service image: one image, the command chooses the service (ingest, api, alerts, migrate).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY store store
COPY ingest ingest
COPY alerts alerts
COPY api api
COPY dashboards dashboards
COPY simulators simulators
COPY placewatch placewatch
COPY registry /registry
RUN pip install . && useradd --system --uid 10001 placewatch
USER placewatch
ENV PLACEWATCH_API_HOST=0.0.0.0 PLACEWATCH_ENVIRONMENT=production PLACEWATCH_LOG_FORMAT=json
EXPOSE 8000
CMD ["placewatch", "api"]
