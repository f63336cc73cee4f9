# An aiohttp service of the instrumentation contract (docs/contract.md). aiohttp is neither WSGI
# nor ASGI: it has its own server, its own middlewares and its own 404 / 405 / 413 handling,
# which RAISES web.HTTPException subclasses through the middleware chain (an unmatched route's
# handler raises HTTPNotFound, a body over client_max_size raises HTTPRequestEntityTooLarge from
# request.json()). One middleware (`observe`) therefore turns every exception into a JSON
# response and then counts, times and logs it: a middleware that only looks at returned
# responses would miss every 404, 405 and 413.
#
# Prometheus text on /metrics with aiohttp's canonical route templates (`/api/users/{user_id}`)
# as the `path` label, one JSON log line per request on stdout with the trace_id and span_id of
# the request's SERVER span (opentelemetry-instrumentation-aiohttp-server), OTLP gRPC traces
# with the W3C traceparent continued. One process, one event loop: `python app.py`.
import json
import logging
import os
import sqlite3
import sys
import time
from datetime import datetime, timezone

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

SERVICE = os.environ.get("OTEL_SERVICE_NAME", "fastapi-backend")
UNMATCHED = "<unmatched>"
MAX_BODY = 64 * 1024
SQLITE_MAX_INT = 2**63 - 1

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

# The instrumentation replaces web.Application with a subclass that puts its middleware (the
# SERVER span) first, i.e. outermost: it must run before the Application below is created. It
# names the span `{METHOD} {route}` from request.match_info.route.resource.canonical
# (`GET /api/users/{user_id}`), and `{METHOD}` alone when no route matched: never the raw URL,
# so the spans need no renaming. Error status on 5xx only.
AioHttpServerInstrumentor().instrument()

# ============ STORE: SQLite in memory, seeded ============
# One event loop: every statement runs synchronously between two awaits, so no two requests
# ever use the connection at once (it takes microseconds in memory; a file or a remote
# database would call for aiosqlite or an executor).
db = sqlite3.connect(":memory:", isolation_level=None)
db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
db.executemany("INSERT INTO users (name) VALUES (?)", [("Alice",), ("Bob",), ("Carol",)])


# ============ MIDDLEWARE: count, time and log every request once ============
def detail(message, status, headers=None):
    """Errors in FastAPI's shape, {"detail": "..."}, never aiohttp's text bodies."""
    return web.json_response({"detail": message}, status=status, headers=headers)


def route_of(request):
    """The matched resource's canonical template (`/api/users/{user_id}` for the route
    `/api/users/{user_id:[0-9]+}`), or <unmatched>: a request that matched no route gets a
    MatchInfoError whose route (a SystemRoute) has no resource."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def observe(request, handler):
    """Inside the instrumentation's middleware, so the SERVER span is current. Every outcome
    becomes a response here: a returned one, an HTTPException aiohttp or a view raised (404
    unmatched, 405, 413, ...) and any other exception (500). Each is counted once."""
    start = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            response = web.Response(status=error.status, headers=error.headers)
        else:
            # 405 names the allowed methods; keep that header, not the text/plain type.
            allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
            response = detail(error.reason, error.status, allow)
    except Exception:
        log.exception("Unhandled exception", extra={"fields": {
            "endpoint": request.path, "method": request.method}})
        response = detail("Internal Server Error", 500)
    duration = time.perf_counter() - start
    path = route_of(request)
    status = response.status
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


# ============ VIEWS ============
async def metrics(request):
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def health(request):
    return web.json_response({"status": "ok"})


async def get_user(request):
    user_id = int(request.match_info["user_id"])  # the route admits ASCII digits only
    with tracer.start_as_current_span("get_user") as span:
        if user_id > SQLITE_MAX_INT:  # no such row; SQLite and OTLP (int64) refuse it
            return detail("User not found", 404)
        span.set_attribute("user_id", user_id)
        with tracer.start_as_current_span("SELECT users") as db_span:
            db_span.set_attributes({"db.system": "sqlite", "db.operation.name": "SELECT",
                                    "db.collection.name": "users"})
            row = db.execute("SELECT id, name FROM users WHERE id = ?", (user_id,)).fetchone()
        if row is None:
            return detail("User not found", 404)
        return web.json_response({"id": row[0], "name": row[1]})


async def create_user(request):
    try:
        body = await request.json()  # over client_max_size: HTTPRequestEntityTooLarge (413)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return detail("Malformed JSON", 400)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        return detail("name must be a string", 422)
    with tracer.start_as_current_span("create_user") as span:
        with tracer.start_as_current_span("INSERT users") as db_span:
            db_span.set_attributes({"db.system": "sqlite", "db.operation.name": "INSERT",
                                    "db.collection.name": "users"})
            user_id = db.execute("INSERT INTO users (name) VALUES (?)", (name,)).lastrowid
        span.set_attribute("user_id", user_id)
        return web.json_response({"id": user_id, "name": name}, status=201)


# ============ APP ============
# client_max_size: a larger body makes request.json() raise 413 (aiohttp's default is 1 MiB).
app = web.Application(middlewares=[observe], client_max_size=MAX_BODY)
app.add_routes([
    # A non-integer id matches no route: 404, path <unmatched>, as Flask's and Django's `int`
    # converters do. [0-9], not \d, which also matches other scripts' digits.
    web.get("/api/users/{user_id:[0-9]+}", get_user),
    web.post("/api/users", create_user),
    web.get("/health", health),
    web.get("/metrics", metrics),
])


if __name__ == "__main__":
    try:
        # run_app stops on SIGTERM / SIGINT (GracefulExit, caught inside: it returns, exit 0),
        # waiting up to shutdown_timeout for requests in flight. access_log=None: the request
        # lines are ours; print=None: no "Running on" banner on stdout.
        web.run_app(app, host=os.environ.get("HOST", "127.0.0.1"),
                    port=int(os.environ.get("PORT", "8000")),
                    access_log=None, print=None, shutdown_timeout=10)
    finally:
        provider.shutdown()  # sends the spans still queued
