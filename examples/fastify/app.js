'use strict';
// The Fastify application: the contract's routes, the hooks that record every request once in
// the metrics and the log, and the handlers that turn every error Fastify raises (JSON parse,
// body limit, schema validation, not found) into a `{"detail": ...}` answer.

const http = require('http');
const Fastify = require('fastify');
const { LogController } = require('fastify');
const { SpanStatusCode, context, trace } = require('@opentelemetry/api');
const { RPCType, getRPCMetadata } = require('@opentelemetry/core');

const metrics = require('./metrics');
const { Users } = require('./users');

/** The `path` label of requests that matched no route: one series for all of them. */
const UNMATCHED = '<unmatched>';

/** Largest accepted request body: 64 KiB, answered 413 beyond. */
const BODY_LIMIT = 64 * 1024;

/** What `onRequest` leaves on the request for `onResponse`. */
const STARTED = Symbol('started');
const SERVER_SPAN = Symbol('serverSpan');
const RECORDED = Symbol('recorded');

const USER_PARAMS = {
  type: 'object',
  required: ['user_id'],
  properties: { user_id: { type: 'string', pattern: '^[+-]?[0-9]+$' } },
};

const NEW_USER = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string' } },
};

/** The level of a request line: 5xx ERROR, 4xx WARNING, else INFO. */
function levelFor(status) {
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  return 'info';
}

function detail(reply, status, message) {
  return reply.code(status).send({ detail: message });
}

/**
 * Runs `work` inside a child span `name` of `parent` (the request's SERVER span) and returns
 * its result; the span ends before the caller answers, and is marked Error when `work` throws.
 */
async function inSpan(tracer, parent, name, options, work) {
  const parentContext = parent ? trace.setSpan(context.active(), parent) : context.active();
  return tracer.startActiveSpan(name, options, parentContext, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err?.message });
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * The application, logging with `logger` (a pino instance, see logger.js), keeping its users
 * in this process and serving this process's registry on /metrics.
 */
function createApp(logger, { users = new Users() } = {}) {
  const app = Fastify({
    loggerInstance: logger,
    // Fastify logs `incoming request` and `request completed` (with `res`, `responseTime`)
    // for every request by default: the contract wants one line per request, ours. (Fastify
    // 5.12 deprecates the top-level `disableRequestLogging` option for this one.)
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Fastify's Ajv coerces types by default (`coerceTypes: 'array'`): `{"name": 42}` would
    // pass a `type: 'string'` schema as "42". Path parameters are strings anyway, and their
    // schema below is a pattern on the string.
    ajv: { customOptions: { coerceTypes: false } },
  });
  const tracer = trace.getTracer('obsctl-example-fastify');

  /**
   * Records the request exactly once: a counter increment and a histogram observation
   * labelled with the route template, and one `Request completed` line with the raw path and
   * the ids of the request's SERVER span.
   */
  function record(request, status) {
    if (request[RECORDED]) return;
    request[RECORDED] = true;
    const elapsedNs =
      request[STARTED] === undefined
        ? 0
        : Number(process.hrtime.bigint() - request[STARTED]);
    metrics.record(
      {
        method: request.method,
        path: request.routeOptions.url ?? UNMATCHED,
        status_code: String(status),
      },
      elapsedNs / 1e9,
    );
    const fields = {
      endpoint: request.url.split('?', 1)[0],
      method: request.method,
      status_code: status,
      duration_ms: elapsedNs / 1e6,
    };
    const spanContext = request[SERVER_SPAN]?.spanContext();
    if (spanContext) {
      fields.trace_id = spanContext.traceId;
      fields.span_id = spanContext.spanId;
    }
    request.log[levelFor(status)](fields, 'Request completed');
  }

  // Runs first, synchronously inside Node's `request` callback, where the http
  // instrumentation's SERVER span and its RPC metadata are the active context: remember the
  // span for the log line and the child spans, and give the instrumentation the route template
  // it names the span after (`GET /api/users/:user_id`) and records as `http.route`. Requests
  // that matched no route keep the name `GET` and no `http.route`.
  app.addHook('onRequest', (request, reply, done) => {
    request[STARTED] = process.hrtime.bigint();
    const rpc = getRPCMetadata(context.active());
    request[SERVER_SPAN] = rpc?.span ?? trace.getActiveSpan();
    const route = request.routeOptions.url;
    if (rpc?.type === RPCType.HTTP && route !== undefined) rpc.route = route;
    // A client that went away before the answer was written: Node never emits `finish`, so
    // Fastify never runs `onResponse`. Counted here as 499, once.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) {
        record(request, reply.raw.headersSent ? reply.statusCode : 499);
      }
    });
    done();
  });

  // Every response Fastify finished writing: routes, the not-found handler, the error handler.
  app.addHook('onResponse', (request, reply, done) => {
    record(request, reply.statusCode);
    done();
  });

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/metrics', async (request, reply) => {
    const body = await metrics.register.metrics();
    return reply.type(metrics.register.contentType).send(body);
  });

  app.get('/api/users/:user_id', { schema: { params: USER_PARAMS } }, async (request, reply) => {
    const id = Number(request.params.user_id);
    const user = await inSpan(
      tracer,
      request[SERVER_SPAN],
      'get_user',
      { attributes: { user_id: id } },
      () => (Number.isSafeInteger(id) ? users.get(id) : undefined),
    );
    if (!user) return detail(reply, 404, 'User not found');
    return user;
  });

  app.post('/api/users', { schema: { body: NEW_USER } }, async (request, reply) => {
    const user = await inSpan(tracer, request[SERVER_SPAN], 'create_user', {}, async (span) => {
      const created = await users.create(request.body.name);
      span.setAttribute('user_id', created.id);
      return created;
    });
    return reply.code(201).send(user);
  });

  app.setNotFoundHandler((request, reply) => detail(reply, 404, 'Not Found'));

  // Errors become `{"detail": ...}` answers with the contract's statuses. Fixed texts: parser
  // and validator messages can quote what the client sent, and nothing it sent reaches the log.
  app.setErrorHandler((error, request, reply) => {
    if (error.validation) {
      // Schema errors: Fastify says 400; answered 422 as FastAPI does.
      return error.validationContext === 'params'
        ? detail(reply, 422, 'user_id must be an integer')
        : detail(reply, 422, '`name` is required and must be a string');
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return detail(reply, 400, 'the body is not valid JSON');
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return detail(reply, 413, `the body is larger than ${BODY_LIMIT} bytes`);
      default:
        break;
    }
    const status = Number(error.statusCode);
    if (status >= 400 && status < 500) {
      return detail(reply, status, http.STATUS_CODES[status] ?? 'Bad Request');
    }
    request.log.error({ error_type: error.code ?? error.name ?? typeof error }, 'Unhandled error');
    return detail(reply, 500, 'Internal Server Error');
  });

  return app;
}

module.exports = { createApp };
