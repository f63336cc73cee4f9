# gunicorn reads this file from the working directory: `gunicorn app:app` in examples/flask.
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# ONE worker process: prometheus_client keeps its registry per process, so with several
# workers each scrape would see one worker's counts (see examples/fastapi/multiprocess.py for
# the multiprocess mode that several workers need). Threads give the concurrency.
workers = 1
threads = 8
# Request lines are the app's JSON logs on stdout; gunicorn's own messages stay on stderr.
accesslog = None
errorlog = "-"
graceful_timeout = 10
# gunicorn 23+ opens a control socket in ~/.gunicorn by default: one shared path that a second
# instance on the same machine would fight over. Not needed here.
control_socket_disable = True
