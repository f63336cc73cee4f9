'use strict';
// OpenTelemetry set-up. It must run before `express` and `http` are required, so that their
// instrumentations can patch them: server.js requires this file on its first line (running
// `node --require ./tracing.js server.js` works too; the module is only evaluated once).
//
// Everything standard comes from the environment, read by the SDK itself:
// OTEL_EXPORTER_OTLP_ENDPOINT (gRPC, default http://localhost:4317), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER (+ _ARG), OTEL_BSP_* and OTEL_SDK_DISABLED.

const { NodeSDK } = require('@opentelemetry/sdk-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http');
const { ExpressInstrumentation } = require('@opentelemetry/instrumentation-express');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');
const { DEFAULT_SERVICE_NAME, serviceName } = require('./service');

// The contract's default name sits under what the environment says: the SDK merges its
// detectors (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) over this resource.
const resource = defaultResource().merge(
  resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME }),
);

const sdk = new NodeSDK({
  resource,
  // OTLP over gRPC, behind the batch processor the SDK builds from OTEL_BSP_* settings.
  traceExporter: new OTLPTraceExporter(),
  // Metrics are prom-client's /metrics and logs are pino's stdout: no OTLP metrics or logs
  // (the SDK would otherwise start both exporters by default).
  metricReaders: [],
  logRecordProcessors: [],
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation()],
});
sdk.start();

/**
 * Flushes the spans still queued and stops the SDK, waiting at most `timeoutMs`: a collector
 * that is down must not hold the process at exit.
 */
async function shutdown(timeoutMs = 5000) {
  let timer;
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([sdk.shutdown(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

module.exports = { serviceName, shutdown };
