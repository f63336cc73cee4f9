# main.py for several worker processes (`uvicorn --workers N`, gunicorn): prometheus_client's
# multiprocess mode. Each worker process has its own registry, so with main.py a scrape sees
# only the worker that happened to answer it, and the counters seem to go up and down
# between scrapes. Here every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR
# and /metrics adds up the files of all workers (MultiProcessCollector).
#
# PROMETHEUS_MULTIPROC_DIR must name a fresh, empty directory, set BEFORE the workers start
# (prometheus_client reads it when it is imported): run it with run_multiprocess.sh, or e.g.
#   sh -c 'export PROMETHEUS_MULTIPROC_DIR=$(mktemp -d); exec uvicorn multiprocess:app --workers 2 --host $HOST --port $PORT'
# Tracing needs nothing special: uvicorn's workers import this module each, so each worker has
# its own TracerProvider and batch exporter thread.
import os, sys, time, json, datetime
from contextlib import asynccontextmanager

if not os.path.isdir(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")):
    # Without it every worker silently falls back to its own registry: the bug this file fixes.
    raise RuntimeError("PROMETHEUS_MULTIPROC_DIR must name an existing empty directory, "
                       "set before the workers start (see run_multiprocess.sh)")

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (CollectorRegistry, Counter, Histogram, ProcessCollector,
                               generate_latest, multiprocess, CONTENT_TYPE_LATEST)
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

@asynccontextmanager
async def lifespan(app):
    yield
    # Only live gauges (multiprocess_mode="live...") need it; harmless otherwise, and keeps the
    # directory right if one is added later.
    multiprocess.mark_process_dead(os.getpid())

app = FastAPI(lifespan=lifespan)
requests_total = Counter('fastapi_requests_total', 'Total HTTP requests', ['method', 'path', 'status_code'])
request_duration = Histogram('fastapi_request_duration_seconds', 'HTTP request duration in seconds',
    ['method', 'path', 'status_code'], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

# The registry /metrics serves: NOT the default one (the metrics above are registered there,
# and would be exposed a second time with this worker's values only).
metrics_registry = CollectorRegistry()
multiprocess.MultiProcessCollector(metrics_registry)
# Multiprocess mode has no process collector (CPU, memory): this one reports the worker that
# answers the scrape only, so successive scrapes may show different workers (different
# process_start_time_seconds). Enough for the CPU and memory panels to have data; per-worker
# totals would need one scrape target per worker.
ProcessCollector(registry=metrics_registry)

provider = TracerProvider(resource=Resource.create({"service.name": "fastapi-backend"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
trace.set_tracer_provider(provider)

def log(level, message, **fields):
    line = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level, "service": "fastapi-backend", "message": message, **fields}
    # One write per line: lines of several workers sharing stdout (a pipe) do not interleave.
    sys.stdout.write(json.dumps(line) + "\n"); sys.stdout.flush()

@app.middleware("http")
async def observe(request: Request, call_next):
    start = time.time()
    response = await call_next(request)
    duration = time.time() - start
    route = request.scope.get("route")
    path = route.path if route else "<unmatched>"
    requests_total.labels(request.method, path, response.status_code).inc()
    request_duration.labels(request.method, path, response.status_code).observe(duration)
    ctx = trace.get_current_span().get_span_context()
    level = "ERROR" if response.status_code >= 500 else "WARNING" if response.status_code >= 400 else "INFO"
    log(level, "Request completed", endpoint=request.url.path, method=request.method,
        status_code=response.status_code, duration_ms=duration * 1000,
        trace_id=format(ctx.trace_id, "032x"), span_id=format(ctx.span_id, "016x"))
    return response

@app.get("/metrics")
async def metrics():
    return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

# Each worker has its own copy: a user created in one worker is unknown to the other. A real
# service keeps users in a shared store (backend/ uses SQLite); the seeded ones are the same.
USERS = {1: "Alice", 2: "Bob", 3: "Carol"}

@app.get("/api/users/{user_id}")
async def get_user(user_id: int):
    if user_id not in USERS:
        return JSONResponse({"detail": "User not found"}, status_code=404)
    return {"id": user_id, "name": USERS[user_id]}

@app.post("/api/users", status_code=201)
async def create_user(user: dict):
    name = user.get("name")
    if not isinstance(name, str):
        return JSONResponse({"detail": "name must be a string"}, status_code=422)
    uid = max(USERS) + 1; USERS[uid] = name
    return {"id": uid, "name": name}

@app.get("/health")
async def health():
    return {"status": "ok"}

FastAPIInstrumentor.instrument_app(app)
