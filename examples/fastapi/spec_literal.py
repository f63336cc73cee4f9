# The spec's Part 4 "Complete FastAPI Application Example"
# (spec/instrumentation-requirements.md), VERBATIM: not one line below this header is changed.
# It keeps every bug DESIGN.md lists ("The spec's own bugs"): /metrics returns generate_latest()
# from a FastAPI route (a JSON-encoded string), logs go to stderr through a JsonFormatter() with
# no format (no timestamp, no level), `path` is the raw URL, the OTLP endpoint is hard-coded to
# localhost:4317 (OTEL_EXPORTER_OTLP_ENDPOINT is ignored), the client's body lands in a span
# attribute and a log line. `from pythonjsonlogger import jsonlogger` still imports with
# python-json-logger 4 (it warns that the module moved to pythonjsonlogger.json).
# obsctl verify must fail it.
from fastapi import FastAPI, Request
from prometheus_client import Counter, Histogram, generate_latest, CONTENT_TYPE_LATEST
from pythonjsonlogger import jsonlogger
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
import logging
import time
import json

# Initialize FastAPI app
app = FastAPI(title="FastAPI Backend")

# ============ PROMETHEUS METRICS ============
requests_total = Counter(
    'fastapi_requests_total',
    'Total HTTP requests',
    ['method', 'path', 'status_code']
)

request_duration = Histogram(
    'fastapi_request_duration_seconds',
    'HTTP request duration in seconds',
    ['method', 'path', 'status_code'],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
)

# ============ JSON LOGGING ============
logHandler = logging.StreamHandler()
formatter = jsonlogger.JsonFormatter()
logHandler.setFormatter(formatter)
logger = logging.getLogger()
logger.addHandler(logHandler)
logger.setLevel(logging.INFO)

# ============ OPENTELEMETRY TRACING ============
otlp_exporter = OTLPSpanExporter(
    endpoint="localhost:4317",
    insecure=True
)
trace_provider = TracerProvider()
trace_provider.add_span_processor(BatchSpanProcessor(otlp_exporter))
trace.set_tracer_provider(trace_provider)
FastAPIInstrumentor.instrument_app(app)

tracer = trace.get_tracer(__name__)

# ============ MIDDLEWARE ============
@app.middleware("http")
async def metrics_and_logging_middleware(request: Request, call_next):
    start_time = time.time()
    response = await call_next(request)
    duration = time.time() - start_time
    duration_ms = duration * 1000
    
    # Record Prometheus metrics
    requests_total.labels(
        method=request.method,
        path=request.url.path,
        status_code=response.status_code
    ).inc()
    
    request_duration.labels(
        method=request.method,
        path=request.url.path,
        status_code=response.status_code
    ).observe(duration)
    
    # Log to JSON
    logger.info(
        "Request completed",
        extra={
            "service": "fastapi-backend",
            "endpoint": request.url.path,
            "method": request.method,
            "status_code": response.status_code,
            "duration_ms": int(duration_ms)
        }
    )
    
    return response

# ============ ENDPOINTS ============
@app.get("/metrics")
async def metrics():
    return generate_latest()

@app.get("/api/users/{user_id}")
async def get_user(user_id: int):
    with tracer.start_as_current_span("get_user") as span:
        span.set_attribute("user_id", user_id)
        logger.info("Fetching user", extra={"user_id": user_id})
        return {"id": user_id, "name": "John"}

@app.post("/api/users")
async def create_user(user_data: dict):
    with tracer.start_as_current_span("create_user") as span:
        span.set_attribute("user_data", str(user_data))
        logger.info("Creating user", extra={"user_data": user_data})
        return {"id": 1, **user_data}

@app.get("/health")
async def health():
    return {"status": "ok"}

if __name__ == "__main__":
    import uvicorn
    uvicorn.run(app, host="0.0.0.0", port=8000)
