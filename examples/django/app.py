# A Django service of the instrumentation contract (docs/contract.md), in one module: settings,
# URLs, views and middleware. It runs under gunicorn with SEVERAL worker processes
# (gunicorn.conf.py, started by run.sh), which changes two things compared with the Flask peer:
#
# - Metrics: prometheus_client's multiprocess mode. Every worker writes its samples to files in
#   PROMETHEUS_MULTIPROC_DIR, and /metrics adds up the files of all workers
#   (MultiProcessCollector); the process collector reports the worker that answers the scrape.
# - Traces: the TracerProvider, its BatchSpanProcessor (and export thread) and the OTLP gRPC
#   exporter (and channel) are created in each worker AFTER the fork (start_tracing(), called
#   by gunicorn's post_fork hook), as OpenTelemetry's docs advise for gunicorn. gunicorn
#   preloads this module in the master: what is created here, at import, is inherited by fork,
#   where threads do not survive and gRPC channels are not meant to be shared. (SDK 1.45 does
#   restart a batch processor's thread in a forked child, so the thread half of that pitfall
#   is mitigated in this release; the hook does not depend on it.)
#
# Prometheus text on /metrics with Django's route templates (`api/users/<int:user_id>`) as the
# `path` label, one JSON log line per request on stdout with the trace_id and span_id of the
# request's SERVER span (opentelemetry-instrumentation-django), OTLP gRPC traces with the W3C
# traceparent continued. Users live in one SQLite file shared by the workers (USERS_DB).
import json
import logging
import os
import secrets
import sys
import time
from datetime import datetime, timezone

for variable in ("PROMETHEUS_MULTIPROC_DIR", "USERS_DB"):
    if not os.environ.get(variable):
        # Without PROMETHEUS_MULTIPROC_DIR every worker silently keeps its own registry, and a
        # scrape sees whichever worker answered it.
        raise RuntimeError(f"{variable} must be set before gunicorn starts: run ./run.sh")
if not os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]):
    raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must name an existing, empty directory")

from django.conf import settings

SERVICE = os.environ.get("OTEL_SERVICE_NAME", "fastapi-backend")
UNMATCHED = "<unmatched>"
MAX_BODY = 64 * 1024

settings.configure(
    DEBUG=False,
    # Nothing is signed (no sessions, no auth); a key is still required.
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50),
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]", os.environ.get("HOST", "127.0.0.1")],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],  # no models, no migrations, no admin
    # DjangoInstrumentor puts its middleware (the SERVER span) in front of these.
    MIDDLEWARE=[
        f"{__name__}.observe",  # outermost of ours: counts what the ones below answer too
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    DATABASES={"default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["USERS_DB"],
        "OPTIONS": {"timeout": 5},  # two processes write to one file: wait for the lock
    }},
    DATA_UPLOAD_MAX_MEMORY_SIZE=MAX_BODY,  # larger bodies: RequestDataTooBig, answered 413 below
    USE_TZ=True,
    LOGGING_CONFIG=None,  # logging is ours (below), not Django's console handlers
)

import django

django.setup()

from django.core.exceptions import RequestDataTooBig
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import JsonResponse, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               ProcessCollector, generate_latest, multiprocess)
from opentelemetry import trace
from opentelemetry.instrumentation.django import DjangoInstrumentor

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


# StreamHandler writes each line with one write() and flushes it: the two workers share stdout
# (a pipe), and lines shorter than PIPE_BUF do not interleave.
handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonLines())
logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
# django.request logs "Not Found: /path" for every 4xx: the request line already says it. Its
# 5xx records (with the traceback) stay.
logging.getLogger("django.request").setLevel(logging.ERROR)
log = logging.getLogger("peer")

# ============ METRICS: prometheus_client multiprocess mode ============
requests_total = Counter(
    "fastapi_requests_total", "Total HTTP requests", ["method", "path", "status_code"])
request_duration = Histogram(
    "fastapi_request_duration_seconds", "HTTP request duration in seconds",
    ["method", "path", "status_code"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

# The registry /metrics serves: NOT the default one (it holds the metrics above with this
# worker's values only). MultiProcessCollector adds up every worker's files; the process
# collector (absent in multiprocess mode) reports the worker that answers the scrape.
metrics_registry = CollectorRegistry()
multiprocess.MultiProcessCollector(metrics_registry)
ProcessCollector(registry=metrics_registry)

# ============ TRACES ============
# The API only, at import: this tracer (and the instrumentation's) is a proxy that uses the
# provider start_tracing() installs in each worker.
tracer = trace.get_tracer(__name__)


def start_tracing():
    """The worker's TracerProvider: OTLP gRPC to OTEL_EXPORTER_OTLP_ENDPOINT (default
    localhost:4317) behind a batch processor, whose export thread starts here, in the worker.
    The SDK also honours OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*.
    Called by gunicorn's post_fork hook (gunicorn.conf.py)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
    trace.set_tracer_provider(provider)
    return provider


# ============ STORE: one SQLite file for all workers, seeded ============
SEED = [(1, "Alice"), (2, "Bob"), (3, "Carol")]


def seed():
    """Idempotent: with preload_app it runs once in the master, else once per worker."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
        cursor.execute("CREATE TABLE IF NOT EXISTS users "
                       "(id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        cursor.executemany("INSERT OR IGNORE INTO users (id, name) VALUES (%s, %s)", SEED)
    connection.close()  # no SQLite connection may cross the fork


seed()


# ============ MIDDLEWARE: count, time and log every request once ============
def observe(get_response):
    """Runs inside the instrumentation's middleware, so the SERVER span is current; Django
    turns every exception below into a response (404, 500...) before it gets here."""

    def middleware(request):
        response = get_response(request)
        start = request.META.get("peer.start", time.perf_counter())
        duration = time.perf_counter() - start
        match = request.resolver_match
        route = match.route if match is not None and match.route else UNMATCHED
        status = response.status_code
        requests_total.labels(request.method, route, status).inc()
        request_duration.labels(request.method, route, status).observe(duration)
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

    return middleware


def start_clock(wsgi_app):
    """Outermost WSGI layer: the request's clock starts before Django runs."""
    def timed(environ, start_response):
        environ["peer.start"] = time.perf_counter()
        return wsgi_app(environ, start_response)
    return timed


# ============ VIEWS ============
def detail(message, status):
    """Errors in FastAPI's shape, {"detail": "..."}, never Django's HTML pages."""
    return JsonResponse({"detail": message}, status=status)


def allow(method):
    """One method per route; any other: 405 in JSON, with Allow."""
    def decorate(view):
        def checked(request, *args, **kwargs):
            if request.method != method:
                response = detail("Method Not Allowed", 405)
                response["Allow"] = method
                return response
            return view(request, *args, **kwargs)
        return checked
    return decorate


@allow("GET")
def metrics(request):
    return HttpResponse(generate_latest(metrics_registry), content_type=CONTENT_TYPE_LATEST)


@allow("GET")
def health(request):
    return JsonResponse({"status": "ok"})


@allow("GET")
def get_user(request, user_id):
    with tracer.start_as_current_span("get_user") as span:
        span.set_attribute("user_id", user_id)
        with tracer.start_as_current_span("SELECT users") as db:
            db.set_attributes({"db.system": "sqlite", "db.operation.name": "SELECT",
                               "db.collection.name": "users"})
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, name FROM users WHERE id = %s", [user_id])
                row = cursor.fetchone()
        if row is None:
            return detail("User not found", 404)
        return JsonResponse({"id": row[0], "name": row[1]})


@csrf_exempt  # a JSON API for clients without cookies: no CSRF token to send
@allow("POST")
def create_user(request):
    try:
        raw = request.body  # over DATA_UPLOAD_MAX_MEMORY_SIZE: RequestDataTooBig
    except RequestDataTooBig:
        return detail("Request body too large", 413)
    try:
        body = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return detail("Malformed JSON", 400)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        return detail("name must be a string", 422)
    with tracer.start_as_current_span("create_user") as span:
        with tracer.start_as_current_span("INSERT users") as db:
            db.set_attributes({"db.system": "sqlite", "db.operation.name": "INSERT",
                               "db.collection.name": "users"})
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO users (name) VALUES (%s)", [name])
                user_id = cursor.lastrowid
        span.set_attribute("user_id", user_id)
        return JsonResponse({"id": user_id, "name": name}, status=201)


urlpatterns = [
    path("api/users/<int:user_id>", get_user),
    path("api/users", create_user),
    path("health", health),
    path("metrics", metrics),
]


def handler400(request, exception=None):
    return detail("Bad Request", 400)


def handler403(request, exception=None):
    return detail("Forbidden", 403)


def handler404(request, exception=None):
    return detail("Not Found", 404)


def handler500(request):
    return detail("Internal Server Error", 500)


# ============ WSGI ============
# SERVER span per request, named `{METHOD} {route}` (`GET api/users/<int:user_id>`), or
# `{METHOD}` alone when no route matched. Must run before the handler loads MIDDLEWARE.
DjangoInstrumentor().instrument()
application = start_clock(get_wsgi_application())
