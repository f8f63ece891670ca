"""Static files under versioned URLs: ``/static/css/shop.css?v=<content hash>``.

Templates' ``url_for('static', ...)`` adds the file's content hash (``links``), so a
browser may keep a file for a year without asking again (``Cache-Control: public,
max-age=31536000, immutable``): a changed file has a new URL. A request without the
current hash (an old page, a hand-typed address) gets ``no-cache``, so it revalidates.
Imports only Flask (``links`` uses it).
"""

from __future__ import annotations

import hashlib
import os

from flask import Flask, current_app, request
from werkzeug.security import safe_join

IMMUTABLE = "public, max-age=31536000, immutable"


def version(filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256, or None when there is no such file.

    Kept per file; in debug mode a file changed on disk (size or time) is hashed again."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    path = safe_join(app.static_folder or "", filename)
    if path is None:
        return None
    kept: dict = app.extensions.setdefault("static_versions", {})
    found = kept.get(filename)
    if found is not None and not app.debug:
        return found[1]
    try:
        stat = os.stat(path)
    except OSError:
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    if found is not None and found[0] == stamp:
        return found[1]
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()[:12]
    kept[filename] = (stamp, digest)
    return digest


def _cache_headers(response):
    if request.endpoint != "static" or response.status_code != 200:
        return response
    filename = (request.view_args or {}).get("filename", "")
    wanted = request.args.get("v")
    if wanted and wanted == version(filename):
        response.headers["Cache-Control"] = IMMUTABLE
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def init_app(app: Flask) -> None:
    app.after_request(_cache_headers)
