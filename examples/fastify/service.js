'use strict';
// The service's name, as the OpenTelemetry SDK's environment detector reads it
// (OTEL_SERVICE_NAME, then `service.name` in OTEL_RESOURCE_ATTRIBUTES), `fastapi-backend` by
// default. Spans carry it as `service.name` and log lines as `service`. Kept apart from
// tracing.js, like examples/express.

const { envDetector } = require('@opentelemetry/resources');

const DEFAULT_SERVICE_NAME = 'fastapi-backend';

const serviceName =
  envDetector.detect().attributes?.['service.name'] ?? DEFAULT_SERVICE_NAME;

module.exports = { DEFAULT_SERVICE_NAME, serviceName };
