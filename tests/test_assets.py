"""Static files: versioned URLs (content hash) that browsers may keep for a year."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"


def digest(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def test_pages_link_static_files_by_content_hash(client):
    page = client.get("/").get_data(as_text=True)
    assert f'href="/static/css/shop.css?v={digest("css/shop.css")}"' in page
    assert f'src="/static/js/shop.js?v={digest("js/shop.js")}"' in page
    pictures = re.findall(r'src="(/static/img/products/[^"]+)"', page)
    assert pictures and all("?v=" in url for url in pictures)
    # Every static URL on the page carries its version.
    assert not re.search(r'"/static/[^"?]+"', page)


def test_a_versioned_file_is_cached_for_a_year_and_immutable(client):
    page = client.get("/").get_data(as_text=True)
    url = re.search(r'href="(/static/css/shop\.css\?v=[0-9a-f]{12})"', page).group(1)
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.get_data() == (STATIC / "css/shop.css").read_bytes()
    response.close()


def test_an_unversioned_or_stale_address_revalidates(client):
    for url in ("/static/css/shop.css", "/static/css/shop.css?v=000000000000"):
        response = client.get(url)
        response.close()
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"
    assert client.get("/static/nope.css?v=abc").status_code == 404


def test_a_changed_file_gets_a_new_address_in_debug(tmp_path, app):
    (tmp_path / "static").mkdir()
    app.static_folder = str(tmp_path / "static")
    app.debug = True
    (tmp_path / "static" / "a.css").write_text("a { color: red; }")
    from storefront import assets

    with app.test_request_context():
        first = assets.version("a.css")
        (tmp_path / "static" / "a.css").write_text("a { color: blue; } /* longer */")
        second = assets.version("a.css")
        assert assets.version("../secret.txt") is None
    assert first and second and first != second


def test_static_links_are_built_once_per_process(client, monkeypatch):
    # The first page builds each static URL (hashing the file once); later pages take the
    # URL kept for it, without looking the file up again.
    from storefront import assets

    client.get("/")
    looked_up: list[str] = []
    original = assets.version

    def counting(filename: str):
        looked_up.append(filename)
        return original(filename)

    monkeypatch.setattr(assets, "version", counting)
    page = client.get("/").get_data(as_text=True)
    assert f'href="/static/css/shop.css?v={digest("css/shop.css")}"' in page
    assert looked_up == []


def test_in_debug_a_template_links_a_changed_file_by_its_new_hash(tmp_path, app):
    from flask import render_template_string

    (tmp_path / "static").mkdir()
    app.static_folder = str(tmp_path / "static")
    app.debug = True
    (tmp_path / "static" / "a.css").write_text("a { color: red; }")
    link = "{{ url_for('static', filename='a.css') }}"
    with app.test_request_context():
        first = render_template_string(link)
        (tmp_path / "static" / "a.css").write_text("a { color: blue; } /* longer */")
        second = render_template_string(link)
    assert first.startswith("/static/a.css?v=") and second.startswith("/static/a.css?v=")
    assert first != second


def test_kept_links_follow_the_mount_point(client):
    # A link kept for one mount point (SCRIPT_NAME, e.g. behind a proxy's path prefix) is
    # not handed to a page served under another.
    mounted = client.get("/", base_url="http://localhost/shop/").get_data(as_text=True)
    plain = client.get("/").get_data(as_text=True)
    mounted_again = client.get("/", base_url="http://localhost/shop/").get_data(as_text=True)
    for page, prefix in ((mounted, "/shop"), (plain, ""), (mounted_again, "/shop")):
        assert f'href="{prefix}/cart/"' in page
        assert f'href="{prefix}/static/css/shop.css?v={digest("css/shop.css")}"' in page
    assert 'href="/shop/cart/"' not in plain
