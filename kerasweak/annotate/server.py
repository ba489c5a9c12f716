"""The annotation page's HTTP server: the standard library's ThreadingHTTPServer, no framework.

Routes (everything else is 404; a refused request changes nothing and gets a
4xx with a one-line plain-text reason):

    GET  /                    the page (package data kerasweak/annotate/static/)
    GET  /static/NAME         app.js, app.css (only those files)
    GET  /images/NAME         an image of DIR/images/ listed by the store (TIFF is sent as PNG)
    GET  /api/state           classes, colours, images and their labels
    GET  /api/suggest/NAME    the model's suggestions for one image (404 without --model)
    POST /api/save            {"image", "kind", "value", "seconds"}: one change, saved at once

The handlers only parse, check and hand over to LabelStore and ModelAssist.
Bound to 127.0.0.1, the server also refuses requests whose Host header is not
the loopback address (a page elsewhere cannot reach it through DNS
rebinding); with another host, every request needs the random token printed
with the address (in the URL once, then a cookie).
"""

import hmac
import io
import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from ..errors import KerasweakError
from .store import BadRequest, FolderLock, LabelStore

STATIC = {"app.js": "text/javascript; charset=utf-8", "edit.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_BODY = 2 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost")


def static_file(name):
    return resources.files("kerasweak.annotate").joinpath("static", name).read_bytes()


class Refused(Exception):
    def __init__(self, status, reason):
        super().__init__(reason)
        self.status, self.reason = status, reason


class Handler(BaseHTTPRequestHandler):
    server_version = "kerasweak-annotate"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the terminal shows the address, not every request
        if self.server.verbose:
            super().log_message(format, *args)

    # ------------------------------------------------------------------ plumbing
    def _send(self, status, body, content_type="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj):
        self._send(200, json.dumps(obj).encode(), "application/json")

    def _refuse(self, status, reason):
        self._send(status, (reason.splitlines()[0][:300] + "\n").encode())

    def _route(self):
        """(path parts, query) of the request, after the host and token checks."""
        raw = self.path
        if not raw.startswith("/"):
            raise Refused(400, "the request path must start with /")
        path, _, query = raw.partition("?")
        query = urllib.parse.parse_qs(query.partition("#")[0])
        if "\\" in path or "//" in path:
            raise Refused(403, "refused: the path leaves the served folder")
        parts = [urllib.parse.unquote(p) for p in path.split("/")[1:]]
        if any(p in ("..", ".") or "/" in p or "\\" in p or "\x00" in p for p in parts):
            raise Refused(403, "refused: the path leaves the served folder")
        server = self.server
        if server.token is None:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            if host not in LOOPBACK:
                raise Refused(403, f"refused: Host {host[:60]!r} is not the loopback address")
        else:
            given = (query.get("token") or [None])[0] or self._cookie_token()
            if not given or not hmac.compare_digest(given, server.token):
                raise Refused(403, "refused: the token is missing or wrong (use the address the server printed)")
        return parts, query

    def _cookie_token(self):
        for item in (self.headers.get("Cookie") or "").split(";"):
            key, _, value = item.strip().partition("=")
            if key == "kerasweak_token":
                return value
        return None

    def _dispatch(self, method):
        try:
            parts, query = self._route()
            getattr(self, f"_{method}")(parts, query)
        except Refused as err:
            self._refuse(err.status, err.reason)
        except BadRequest as err:
            self._refuse(err.status, str(err))
        except Exception as err:  # a bug or a full disk: one line, the server keeps serving
            self.server.errors.append(err)
            self._refuse(500, f"server error: {err.__class__.__name__}: {err}")

    def do_GET(self):
        self._dispatch("get")

    def do_HEAD(self):
        self._dispatch("get")

    def do_POST(self):
        self._dispatch("post")

    def do_PUT(self):
        self._refuse(405, "method not allowed")

    do_DELETE = do_PATCH = do_PUT

    # ------------------------------------------------------------------ GET
    def _get(self, parts, query):
        store, assist = self.server.store, self.server.assist
        if parts in ([""], ["index.html"]):
            headers = []
            if self.server.token is not None:
                headers.append(("Set-Cookie", f"kerasweak_token={self.server.token}; HttpOnly; SameSite=Strict; Path=/"))
            return self._send(200, static_file("index.html"), "text/html; charset=utf-8", headers)
        if len(parts) == 2 and parts[0] == "static":
            if parts[1] not in STATIC:
                raise Refused(404, f"no static file {parts[1][:60]!r}")
            return self._send(200, static_file(parts[1]), STATIC[parts[1]])
        if len(parts) == 2 and parts[0] == "images":
            if parts[1] not in store.images:
                raise Refused(404, f"no image {parts[1][:80]!r} in images/")
            return self._image(store.images[parts[1]])
        if parts == ["api", "state"]:
            state = store.state()
            state["model"] = None if assist is None else str(self.server.model_path)
            state["uncertainty"] = {} if assist is None else assist.known_uncertainties()
            return self._json(state)
        if len(parts) == 3 and parts[:2] == ["api", "suggest"]:
            if assist is None:
                raise Refused(404, "no model: start with --model OUT/model for suggestions")
            if parts[2] not in store.images:
                raise Refused(404, f"no image {parts[2][:80]!r} in images/")
            return self._json(assist.suggest(parts[2]))
        raise Refused(404, "not found")

    def _image(self, path):
        content_type = IMAGE_TYPES.get(path.suffix.lower())
        if content_type is not None:
            return self._send(200, path.read_bytes(), content_type)
        from PIL import Image

        from ..data.folder_files import decode_image

        buffer = io.BytesIO()
        Image.fromarray(decode_image(path, 3)).save(buffer, format="PNG")
        return self._send(200, buffer.getvalue(), "image/png")

    # ------------------------------------------------------------------ POST
    def _post(self, parts, query):
        if parts != ["api", "save"]:
            raise Refused(404, "not found")
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            raise Refused(415, "the body must be JSON (Content-Type: application/json)")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise Refused(411, "Content-Length is missing") from None
        if not 0 <= length <= MAX_BODY:
            raise Refused(413, f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise Refused(400, f"the body is not JSON ({err.__class__.__name__})") from None
        if not isinstance(body, dict) or not {"image", "kind", "value"} <= set(body) or set(body) - {"image", "kind", "value", "seconds"}:
            raise Refused(400, 'the body must be {"image", "kind", "value", "seconds"}')
        self.server.store.save(body["image"], body["kind"], body["value"], body.get("seconds", 0))
        self._json({"saved": body["kind"]})


class AnnotateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store, assist=None, host="127.0.0.1", port=0, token=None, verbose=False, model_path=None):
        self.store, self.assist, self.token, self.verbose, self.model_path = store, assist, token, verbose, model_path
        self.errors = []
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if self.token is None else host
        return f"http://{shown}:{port}/" + ("" if self.token is None else f"?token={self.token}")


def make_server(folder, model=None, host=None, port=0, verbose=False):
    """(server, lock): an AnnotateServer for `folder` (not yet serving) holding the folder's lock.

    `host` None binds 127.0.0.1 with no token; any other host requires a random
    token. The caller runs `server.serve_forever()` and then `close(server, lock)`.
    """
    if not Path(folder).is_dir():
        raise KerasweakError("not a folder (a generic dataset folder holds dataset.toml and images/)", folder)
    lock = FolderLock(folder).acquire()
    try:
        store = LabelStore(folder)
        assist = None
        if model is not None:
            from .assist import ModelAssist

            assist = ModelAssist(model, store)
        token = None if host is None else secrets.token_urlsafe(16)
        try:
            server = AnnotateServer(store, assist, host or "127.0.0.1", port, token, verbose, model)
        except OSError as err:
            raise KerasweakError(f"cannot listen on {host or '127.0.0.1'} port {port} ({err.strerror}); "
                                 "choose another with --port", folder) from None
    except BaseException:
        lock.release()
        raise
    server.stop_warm_up = threading.Event()
    if assist is not None:
        threading.Thread(target=assist.warm_up, args=(server.stop_warm_up,), daemon=True).start()
    return server, lock


def close(server, lock):
    server.stop_warm_up.set()
    server.server_close()
    lock.release()
