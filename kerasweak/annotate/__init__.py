"""`kerasweak annotate DIR`: a local web page for making cheap labels (keypoints, proportions, sizes) in a generic folder.

- store.py: the folder's labels, each change written at once (temporary file, then rename), and the folder lock;
- server.py: the HTTP server (standard library) and its routes, no training logic;
- assist.py: suggestions from an exported model (--model);
- static/: the page (plain HTML, JavaScript and CSS; no build step, nothing fetched from elsewhere).

docs/annotate.md describes the page and its files.
"""

from .server import close, make_server
from .store import LabelStore


def serve(folder, model=None, host=None, port=0, echo=print):
    """Serve the annotation page for `folder` until interrupted; `echo` gets the address."""
    server, lock = make_server(folder, model=model, host=host, port=port)
    try:
        echo(f"annotating {folder}: open {server.url}  (Ctrl-C stops; every change is saved at once)")
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        close(server, lock)


__all__ = ["LabelStore", "make_server", "close", "serve"]
