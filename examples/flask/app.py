# A Flask service of the instrumentation contract (DESIGN.md), to show that obsctl judges any
# framework, not only FastAPI: Prometheus text on /metrics with Flask's route templates as the
# `path` label, one JSON log line per request on stdout with the request's trace_id and span_id,
# OTLP gRPC traces with W3C traceparent continued (FlaskInstrumentor). Served by gunicorn with
# one worker and threads (gunicorn.conf.py): prometheus_client's registry lives in one process.
import json
import logging
import os
import sqlite3
import sys
import threading
import time
from datetime import datetime, timezone

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SERVICE = os.environ.get("OTEL_SERVICE_NAME", "fastapi-backend")
UNMATCHED = "<unmatched>"

# ============ LOGS: one JSON object per line on stdout ============
LEVELS = {logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING"}


class JsonLines(logging.Formatter):
    """timestamp (RFC 3339, UTC, milliseconds, Z), level, service, message, then the record's
    `fields` (extra={"fields": {...}}); json.dumps escapes whatever a client sent."""

    def format(self, record):
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": LEVELS.get(record.levelno, "ERROR"),  # CRITICAL is ERROR in the contract
            "service": SERVICE,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonLines())
logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
log = logging.getLogger("peer")

# ============ METRICS ============
requests_total = Counter(
    "fastapi_requests_total", "Total HTTP requests", ["method", "path", "status_code"])
request_duration = Histogram(
    "fastapi_request_duration_seconds", "HTTP request duration in seconds",
    ["method", "path", "status_code"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

# ============ TRACES ============
# OTLP gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (default localhost:4317); the SDK also honours
# OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_SDK_DISABLED.
provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer(__name__)

# ============ STORE: SQLite in memory, seeded ============
db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
db_lock = threading.Lock()
db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
db.executemany("INSERT INTO users (name) VALUES (?)", [("Alice",), ("Bob",), ("Carol",)])


# ============ APP ============
app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # larger bodies: 413


def name_unmatched(span, environ):
    """FlaskInstrumentor names a request that matched no route with its raw URL
    ("GET /api/users/not-a-number"): one span name per URL. The HTTP conventions say `{METHOD}`."""
    if request.url_rule is None and span.is_recording():
        span.update_name(request.method)


FlaskInstrumentor().instrument_app(app, request_hook=name_unmatched)


def start_clock(wsgi_app):
    """Outermost WSGI layer: the request's clock starts before anything else runs."""
    def timed(environ, start_response):
        environ["peer.start"] = time.perf_counter()
        return wsgi_app(environ, start_response)
    return timed


app.wsgi_app = start_clock(app.wsgi_app)


@app.after_request
def observe(response):
    """Runs once per request, errors and 404s included, while the SERVER span is current."""
    duration = time.perf_counter() - request.environ.get("peer.start", time.perf_counter())
    path = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    status = response.status_code
    requests_total.labels(request.method, path, status).inc()
    request_duration.labels(request.method, path, status).observe(duration)
    ctx = trace.get_current_span().get_span_context()
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    log.log(level, "Request completed", extra={"fields": {
        "endpoint": request.path,
        "method": request.method,
        "status_code": status,
        "duration_ms": duration * 1000,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
    }})
    return response


@app.errorhandler(HTTPException)
def http_error(error):
    """Every error as FastAPI's shape, {"detail": "..."}, not Werkzeug's HTML page."""
    return jsonify(detail=error.description), error.code


@app.get("/metrics")
def metrics():
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.get("/api/users/<int:user_id>")
def get_user(user_id):
    with tracer.start_as_current_span("get_user") as span:
        span.set_attribute("user_id", user_id)
        with tracer.start_as_current_span("SELECT users") as db_span:
            db_span.set_attributes({"db.system": "sqlite", "db.operation.name": "SELECT",
                                    "db.collection.name": "users"})
            with db_lock:
                row = db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return {"detail": "User not found"}, 404
        return {"id": row[0], "name": row[1]}


@app.post("/api/users")
def create_user():
    body = request.get_json()  # malformed JSON: 400; not JSON: 415; over 64 KiB: 413
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        return {"detail": "name must be a string"}, 422
    with tracer.start_as_current_span("create_user") as span:
        with tracer.start_as_current_span("INSERT users") as db_span:
            db_span.set_attributes({"db.system": "sqlite", "db.operation.name": "INSERT",
                                    "db.collection.name": "users"})
            with db_lock:
                user_id = db.execute("INSERT INTO users (name) VALUES (?)", (name,)).lastrowid
        span.set_attribute("user_id", user_id)
        return {"id": user_id, "name": name}, 201


if __name__ == "__main__":
    # Development only; gunicorn (gunicorn.conf.py) is how it is served.
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8000")))
