"""Shared fixtures, after Flask's tutorial: ``app``, ``client``, ``runner``."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from storefront import create_app
from storefront.catalog import load_catalog_file, load_shipping_rates, seed_catalog
from storefront.config import DEFAULTS
from storefront.extensions import db
from storefront.shipping import seed_shipping_rates

pytest_plugins = ["tests.live", "tests.postgres", "tests.smtp"]


def _reuse_url_builders() -> None:
    """Compile each URL rule's builder once per test process, not once per app.

    Werkzeug compiles a small Python function per rule (``Rule._compile_builder``: an AST
    made, walked and compiled) whenever a rule joins a map; the tests build a new shop or
    emulator app for nearly every test, and that compiling was most of an app's creation
    (~150 rules). The function is pure: it depends only on the rule's parsed parts
    (``_trace``), its defaults and ``append_unknown``, and reads the converters through its
    bound rule at call time, so one compiled function serves every equal rule. Skipped (the
    stock behaviour) if a Werkzeug upgrade renames what this relies on.
    """
    from werkzeug.routing.rules import Rule

    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None or getattr(compile_builder, "reused", False):
        return
    compiled: dict = {}

    def reused(self: Rule, append_unknown: bool = True):
        defaults = self.defaults or {}
        try:
            # A default for a part of the rule is baked in through its converter.
            baked = tuple(
                (name, self._converters[name].to_url(defaults[name]))
                for dynamic, name in self._trace
                if dynamic and name in defaults
            )
            key = (self.rule, append_unknown, tuple(self._trace), tuple(defaults.items()), baked)
            function = compiled.get(key)
        except (AttributeError, KeyError, TypeError):  # unhashable defaults, other internals
            return compile_builder(self, append_unknown)
        if function is None:
            function = compiled[key] = compile_builder(self, append_unknown)
        return function

    reused.reused = True
    Rule._compile_builder = reused


_reuse_url_builders()


def _reuse_parsed_rules() -> None:
    """Parse each URL rule's string once per test process, not once per app.

    ``Rule._parse_rule`` splits a rule into its parts and regular expressions and picks the
    converters; for the emulator's ~100 rules that was ~8 of the 25 ms of every emulator
    app the tests make (a shop app: 4 of 10.6 ms). The result depends only on the string
    and the map's converter classes; converters are still made per rule (they hold their
    map), and the rule's trace and arguments are filled as the original does. Skipped if a
    Werkzeug upgrade renames it.
    """
    from werkzeug.routing.rules import Rule

    parse = getattr(Rule, "_parse_rule", None)
    if parse is None or getattr(parse, "reused", False):
        return
    parsed: dict = {}

    def reused(self: Rule, rule: str):
        key = (rule, tuple(self.map.converters.items()))
        entry = parsed.get(key)
        if entry is None:
            trace_start, made = len(self._trace), []
            get_converter = self.get_converter

            def recording(variable, converter, args, kwargs):
                made.append((variable, converter, args, dict(kwargs)))
                return get_converter(variable, converter, args, kwargs)

            self.get_converter = recording
            try:
                parts = list(parse(self, rule))
            finally:
                del self.get_converter
            parsed[key] = (tuple(parts), tuple(self._trace[trace_start:]), tuple(made))
            return parts
        parts, trace, made = entry
        self._trace.extend(trace)
        for variable, converter, args, kwargs in made:
            self._converters[variable] = self.get_converter(variable, converter, args, kwargs)
            self.arguments.add(variable)
        return list(parts)

    reused.reused = True
    Rule._parse_rule = reused


_reuse_parsed_rules()


def _share_compiled_templates() -> None:
    """Compile each Jinja template once per test process, not once per app.

    Every new Flask app has its own Jinja environment and compiled the same templates
    again on their first render (a tenth of the CPU of the shop's request tests). Jinja's
    bytecode cache is made for exactly this: entries are keyed by the template's name and
    file and checked against the source's checksum; the key here also holds the options
    that change compiled code, so apps configured differently never share an entry.
    """
    from flask import Flask
    from jinja2 import BytecodeCache

    if getattr(Flask.create_jinja_environment, "shared", False):
        return

    class SharedBytecode(BytecodeCache):
        def __init__(self) -> None:
            self.compiled: dict = {}

        @staticmethod
        def _key(bucket) -> tuple:
            env = bucket.environment
            options = (
                env.block_start_string,
                env.block_end_string,
                env.variable_start_string,
                env.variable_end_string,
                env.comment_start_string,
                env.comment_end_string,
                env.line_statement_prefix,
                env.line_comment_prefix,
                env.trim_blocks,
                env.lstrip_blocks,
                env.newline_sequence,
                env.keep_trailing_newline,
                env.optimized,
                repr(env.autoescape),
                tuple(sorted(env.extensions)),
            )
            return (bucket.key, options)

        def load_bytecode(self, bucket) -> None:
            code = self.compiled.get(self._key(bucket))
            if code is not None:
                bucket.bytecode_from_string(code)  # dropped if the checksum differs

        def dump_bytecode(self, bucket) -> None:
            self.compiled[self._key(bucket)] = bucket.bytecode_to_string()

    cache = SharedBytecode()
    create = Flask.create_jinja_environment

    def shared(self: Flask):
        env = create(self)
        env.bytecode_cache = cache
        return env

    shared.shared = True
    Flask.create_jinja_environment = shared


_share_compiled_templates()

TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "WTF_CSRF_ENABLED": False,
    # No Stripe unless a test asks for it (the emulator fixtures set these).
    "STRIPE_SECRET_KEY": None,
    "STRIPE_PUBLISHABLE_KEY": None,
    "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
    "STRIPE_API_BASE": None,
    "STRIPE_JS_URL": "https://js.stripe.com/v3/",
    "STRIPE_MAX_NETWORK_RETRIES": 0,
    # Rate limits would trip over tests that repeat requests; tests/test_ratelimits.py
    # turns them on.
    "RATELIMIT_ENABLED": False,
}


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Tests see the shop's defaults, not the developer's shell or ``.env``."""
    # FLASK_DEBUG turns on app.debug (Flask reads it itself); the rest are read by
    # ``load_settings`` from the environment and from ``.env`` in the working directory.
    for name in [*DEFAULTS, "FLASK_DEBUG"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


# Fixtures whose tests take seconds rather than milliseconds: Chromium, then PostgreSQL and
# the every-route walk, then a shop or emulator served over HTTP.
_SLOW_FIXTURES = (
    ("page",),
    ("postgres_server", "hostile_app"),
    ("live_shop", "emulator", "emulator_url"),
)


def pytest_configure(config):
    # pytest-xdist hands a worker its tests one at a time (not in chunks of a quarter of
    # its share), so the slow tests put first below spread over every worker.
    if getattr(config.option, "maxschedchunk", False) is None:
        config.option.maxschedchunk = 1
    # Python's cyclic garbage collector ran ~2,500 times over 300 tests and each full
    # collection walks every live object (~200,000 here: modules, apps, SQLAlchemy's
    # caches): 16% of a test process's CPU. Collecting after every 10,000 new objects
    # rather than 700 halved that (measured on four test files: 4.0 -> 1.9 CPU-s of GC, the
    # process 24 -> 22 CPU-s). Reference counting still frees nearly everything at once.
    # 50,000 and 20: the middle generation (0.7-0.8 of the 1.6-2.0 CPU-s of GC left on two
    # samples of ~240 tests) is then hardly ever collected: GC 2.0 -> 1.4 and 1.6 -> 1.25
    # CPU-s, the processes 28.0 -> 27.1 and 25.4 -> 25.3 CPU-s, old and new run side by side.
    # The young collections cost about the same in total at any threshold: each walks the
    # objects made since the last one that are still alive.
    gc.set_threshold(50_000, 20, 10)


def pytest_collection_finish(session):
    """What importing and collecting made lives for the whole run: ``gc.freeze`` keeps
    those objects out of every later collection."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config, items):
    """Run the slow tests first: parallel workers then finish on short tests together,
    instead of one still running a 10 s browser test collected last while the others
    are done."""

    def rank(item) -> int:
        used = set(getattr(item, "fixturenames", ()))
        for position, names in enumerate(_SLOW_FIXTURES):
            if used.intersection(names):
                return position
        return len(_SLOW_FIXTURES)

    items.sort(key=rank)  # stable: file order within each rank


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # optional: runs with -p no:xdist too
def pytest_xdist_auto_num_workers(config) -> int | None:
    """``-n auto`` (``make test``) starts two workers per core: a worker spends about half
    of its time waiting (on Chromium, on its shop and emulator threads, on PostgreSQL), so
    one per core left the cores half idle. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still wins."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 2 * cores


def make_app(tmp_path, **overrides):
    """The shop on a created and seeded database: by default a new SQLite file in
    ``tmp_path``, copied from one built once per test process (creating the tables and
    seeding costs more than most tests); any other database is created and seeded here."""
    target = tmp_path / "shop.sqlite3"
    config = dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{target}")
    config.update(overrides)
    fresh = config["DATABASE_URL"] == f"sqlite:///{target}" and not target.exists()
    if fresh and tmp_path.is_dir():
        shutil.copyfile(_seeded_template(), target)
        return create_app(config)
    app = create_app(config)
    with app.app_context():
        _create_and_seed()
    return app


def _create_and_seed() -> None:
    db.create_all()
    seed_catalog(load_catalog_file())
    seed_shipping_rates(load_shipping_rates())


_template: Path | None = None


def _seeded_template() -> Path:
    """An SQLite database with the tables and the seed data, made once per process."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="storefront-test-template-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = folder / "shop.sqlite3"
        app = create_app(dict(TEST_CONFIG, DATABASE_URL=f"sqlite:///{path}"))
        with app.app_context():
            _create_and_seed()
            db.session.remove()
            db.engine.dispose()
        _template = path
    return _template


@pytest.fixture
def app(tmp_path):
    """A shop with a fresh, seeded database per test."""
    app = make_app(tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def refusing_port():
    """A loopback port that refuses connections for the whole test: bound but never
    listening, so it stays ours. A port found free and then closed (or a server stopped)
    can be taken by another worker's server before the test connects to it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def csrf_app(tmp_path):
    """Like ``app`` but with CSRF protection on, as in production."""
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    yield app
    with app.app_context():
        db.engine.dispose()
