'use strict';
// The Express application: the contract's routes, and the one middleware that records every
// request in the metrics and the log once its response is done.

const http = require('http');
const express = require('express');
const { SpanStatusCode, trace } = require('@opentelemetry/api');

const metrics = require('./metrics');
const { Users } = require('./users');

/** The `path` label of requests that matched no route: one series for all of them. */
const UNMATCHED = '<unmatched>';

/** Where server.js leaves the request's SERVER span (see `serverSpanOf`). */
const SERVER_SPAN = Symbol('serverSpan');

/** Largest accepted request body. */
const BODY_LIMIT = '64kb';

/**
 * Remembers the span active when Node hands the request to Express: the http
 * instrumentation's SERVER span. Inside Express middleware the active span is the express
 * instrumentation's own layer span instead, whose id would not lead from a log line to the
 * request's SERVER span.
 */
function rememberServerSpan(req, span) {
  req[SERVER_SPAN] = span;
}

/**
 * Parses JSON bodies sent as JSON or without a content type (as FastAPI does); other types
 * leave `req.body` undefined, which the route answers with 422.
 */
const parseJson = express.json({
  limit: BODY_LIMIT,
  type: (req) => !req.headers['content-type'] || Boolean(req.is(['json', '+json'])),
});

function detail(res, status, message) {
  res.status(status).json({ detail: message });
}

/** The route template a request matched, or `<unmatched>`. */
function routeOf(req) {
  return req.route ? `${req.baseUrl}${req.route.path}` : UNMATCHED;
}

/** The level of a request line: 5xx ERROR, 4xx WARNING, else INFO. */
function levelFor(status) {
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  return 'info';
}

/**
 * Records the request exactly once, when its response is done (or the client went away):
 * a counter increment and a histogram observation labelled with the route template, and one
 * `Request completed` log line with the raw path and the ids of the request's SERVER span.
 */
function observe(logger) {
  return function observeRequest(req, res, next) {
    const started = process.hrtime.bigint();
    const endpoint = req.originalUrl.split('?', 1)[0];
    const method = req.method;
    // Captured now: by 'close' the span has ended and the active context may be gone. The
    // active span here would be the express instrumentation's layer span, hence SERVER_SPAN.
    const spanContext = req[SERVER_SPAN]?.spanContext();
    // 'close' follows 'finish' on every response, and also fires when the client disconnects
    // before the answer was sent (which 'finish' never reports): counted as 499.
    res.once('close', () => {
      const elapsedNs = Number(process.hrtime.bigint() - started);
      const status = res.headersSent ? res.statusCode : 499;
      metrics.record(
        { method, path: routeOf(req), status_code: String(status) },
        elapsedNs / 1e9,
      );
      const fields = {
        endpoint,
        method,
        status_code: status,
        duration_ms: elapsedNs / 1e6,
      };
      if (spanContext) {
        fields.trace_id = spanContext.traceId;
        fields.span_id = spanContext.spanId;
      }
      logger[levelFor(status)](fields, 'Request completed');
    });
    next();
  };
}

/**
 * Runs `work` inside a child span `name` and returns its result; the span ends before the
 * caller answers, and is marked Error when `work` throws.
 */
async function inSpan(tracer, name, options, work) {
  return tracer.startActiveSpan(name, options, async (span) => {
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
 * The application, logging to `logger`. By default it keeps its users in this process and
 * serves this process's registry on /metrics. cluster.js passes `users` (`get(id)`,
 * `create(name)`, either may return a promise) and `exposition` (a promise of
 * `{contentType, body}`) that ask the cluster's primary instead.
 */
function createApp(logger, { users = new Users(), exposition = metrics.exposition } = {}) {
  const app = express();
  app.disable('x-powered-by');
  const tracer = trace.getTracer('obsctl-example-express');

  app.use(observe(logger));

  app.get('/health', (req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/metrics', async (req, res) => {
    const { contentType, body } = await exposition();
    res.set('Content-Type', contentType).send(body);
  });

  app.get('/api/users/:user_id', async (req, res) => {
    const raw = req.params.user_id;
    if (!/^[+-]?\d+$/.test(raw)) {
      return detail(res, 422, 'user_id must be an integer');
    }
    const id = Number(raw);
    const user = await inSpan(tracer, 'get_user', { attributes: { user_id: id } }, () =>
      Number.isSafeInteger(id) ? users.get(id) : undefined,
    );
    if (!user) return detail(res, 404, 'User not found');
    return res.json(user);
  });

  app.post('/api/users', parseJson, async (req, res) => {
    const body = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      return detail(res, 422, 'the body must be a JSON object with a string `name`');
    }
    if (typeof body.name !== 'string') {
      return detail(res, 422, '`name` is required and must be a string');
    }
    const user = await inSpan(tracer, 'create_user', {}, async (span) => {
      const created = await users.create(body.name);
      span.setAttribute('user_id', created.id);
      return created;
    });
    return res.status(201).json(user);
  });

  // Known paths, other methods: 405 (as FastAPI answers), labelled with the route template.
  for (const [path, allow] of [
    ['/health', 'GET, HEAD'],
    ['/metrics', 'GET, HEAD'],
    ['/api/users/:user_id', 'GET, HEAD'],
    ['/api/users', 'POST'],
  ]) {
    app.all(path, (req, res) => {
      res.set('Allow', allow);
      detail(res, 405, 'Method Not Allowed');
    });
  }

  app.use((req, res) => {
    detail(res, 404, 'Not Found');
  });

  // Errors become `{"detail": ...}` answers. Parser messages can quote the body, so fixed
  // texts are sent instead, and nothing the client sent reaches the log.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (res.headersSent) return req.socket.destroy();
    switch (err.type) {
      case 'entity.parse.failed':
        return detail(res, 422, 'the body is not valid JSON');
      case 'entity.too.large':
        return detail(res, 413, `the body is larger than ${BODY_LIMIT}`);
      default:
        break;
    }
    const status = Number(err.status ?? err.statusCode);
    if (status >= 400 && status < 500) {
      return detail(res, status, http.STATUS_CODES[status] ?? 'Bad Request');
    }
    logger.error({ error_type: err.name ?? typeof err }, 'Unhandled error');
    return detail(res, 500, 'Internal Server Error');
  });

  return app;
}

module.exports = { createApp, rememberServerSpan };
