# A FastAPI service built from the spec (spec/instrumentation-requirements.md) with the fixes of
# DESIGN.md: Prometheus text on /metrics, JSON log lines with timestamp and level on stdout,
# route-template `path` labels, OTLP gRPC traces (OTEL_EXPORTER_OTLP_ENDPOINT), W3C traceparent.
import logging, sys, time, json, datetime
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram, generate_latest, CONTENT_TYPE_LATEST
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

app = FastAPI()
requests_total = Counter('fastapi_requests_total', 'Total HTTP requests', ['method', 'path', 'status_code'])
request_duration = Histogram('fastapi_request_duration_seconds', 'HTTP request duration in seconds',
    ['method', 'path', 'status_code'], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
provider = TracerProvider(resource=Resource.create({"service.name": "fastapi-backend"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(insecure=True)))
trace.set_tracer_provider(provider)

def log(level, message, **fields):
    line = {"timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level, "service": "fastapi-backend", "message": message, **fields}
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
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

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
