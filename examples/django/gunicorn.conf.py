# gunicorn reads this file from the working directory; run.sh starts `gunicorn app:application`
# in examples/django with PROMETHEUS_MULTIPROC_DIR and USERS_DB set.
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Several worker processes, a few threads each (gunicorn's sync worker with threads > 1 is the
# gthread worker; named here so that nobody wonders). prometheus_client's multiprocess mode
# (app.py) adds up the workers' counts.
workers = int(os.environ.get("WORKERS", "2"))
worker_class = "gthread"
threads = 4
# The app is imported once, in the master, and the workers are forked from it: the set-up in
# which a BatchSpanProcessor created at import would have its export thread in the master only
# (threads do not survive fork) and its gRPC channel shared by every process. post_fork below
# gives each worker its own tracer provider, processor, thread and channel.
preload_app = True
# Request lines are the app's JSON logs on stdout; gunicorn's own messages stay on stderr.
accesslog = None
errorlog = "-"
graceful_timeout = 10
# gunicorn 23+ opens a control socket in ~/.gunicorn by default: one shared path that a second
# instance on the same machine would fight over. Not needed here.
control_socket_disable = True


def post_fork(server, worker):
    """In the new worker, before it serves: its TracerProvider, batch processor and thread."""
    import app

    worker.tracer_provider = app.start_tracing()


def worker_exit(server, worker):
    """A worker stopping gracefully sends the spans still queued."""
    provider = getattr(worker, "tracer_provider", None)
    if provider is not None:
        provider.shutdown()


def child_exit(server, worker):
    """In the master, when a worker is gone: its live gauges (none today) leave the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
