"""The ``rosetta`` command: serve, check, translate, emulate, dialects."""

from __future__ import annotations

import argparse
import atexit
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from proxy.metrics import MULTIPROC_ENV
from proxy.policy import check_policy
from proxy.settings import (
    ConfigError,
    Settings,
    load_settings,
    parse_settings,
)
from proxy.tls import server_options
from proxy.worker import RESOLVED_SETTINGS_ENV
from translators.contract import RosettaError
from translators.registry import UnknownDialectError, available


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"rosetta: configuration error\n{exc}", file=sys.stderr)
        return 1
    except UnknownDialectError as exc:
        print(f"rosetta: {exc}", file=sys.stderr)
        return 1
    except RosettaError as exc:
        print(f"rosetta: {exc.kind.value}: {exc.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rosetta", description="Protocol-translating reverse proxy for session APIs."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve a configuration")
    serve.add_argument("--config", help="YAML config file (default: the embedded default)")
    _add_listen(serve)
    serve.add_argument("--workers", type=int, help="worker processes")
    serve.add_argument("--upstream", help="shortcut: send every dialect to this upstream URL")
    serve.add_argument("--upstream-dialect", help="the dialect the --upstream speaks")
    serve.add_argument(
        "--upstream-auth",
        choices=("passthrough", "static"),
        help="with --upstream: pass callers' credentials through, or use the ones below",
    )
    serve.add_argument("--upstream-user", help="static upstream user")
    serve.add_argument(
        "--upstream-password", help="static upstream password (visible in ps; prefer a config)"
    )
    serve.add_argument("--upstream-token", help="static upstream token")
    serve.add_argument("--upstream-access-key", metavar="AK:SK", help="static upstream key pair")
    serve.add_argument(
        "--upstream-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the upstream's dialect (project_id, instance_id, ...); repeatable",
    )
    serve.add_argument("--session-store", help="'memory' or redis://host:port/db")
    serve.set_defaults(func=_serve)

    check = commands.add_parser("check", help="validate a config and trial-build everything")
    check.add_argument("--config", help="YAML config file (default: the embedded default)")
    check.set_defaults(func=_check)

    translate = commands.add_parser("translate", help="translate one request or response offline")
    translate.add_argument("--from", dest="source", required=True, help="dialect of FILE")
    translate.add_argument("--to", dest="target", required=True, help="dialect to produce")
    translate.add_argument("--response", action="store_true", help="FILE is a response")
    translate.add_argument(
        "--operation", default="session.list", help="with --response: the operation answered"
    )
    translate.add_argument("--canonical", action="store_true", help="print the canonical form")
    translate.add_argument("file", help="an HTTP message or a JSON body; - for stdin")
    translate.set_defaults(func=_translate)

    emulate = commands.add_parser("emulate", help="serve a reference backend of one dialect")
    emulate.add_argument("dialect")
    _add_listen(emulate)
    emulate.add_argument("--sessions", help="JSON array of canonical session records")
    emulate.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (admin)")
    emulate.add_argument("--token", action="append", default=[], help="static token (admin)")
    emulate.add_argument("--access-key", action="append", default=[], help="AK:SK (admin)")
    emulate.add_argument("--node-id", default="rosetta-node-1", help="node id of the sessions")
    emulate.set_defaults(func=_emulate)

    dialects = commands.add_parser("dialects", help="list installed translators and their paths")
    dialects.set_defaults(func=_dialects)
    return parser


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port")


# serve ----------------------------------------------------------------------------------------
def _serve(args: argparse.Namespace) -> int:
    settings = configured_settings(args)
    reload = (lambda: configured_settings(args)) if args.config else None
    return run_server(resolve_secrets(settings), reload_settings=reload)


def configured_settings(args: argparse.Namespace) -> Settings:
    """The config file (or embedded default) with the command line's overrides applied and
    the policy checked; read again on every reload."""
    settings = load_settings(args.config)
    data = settings.model_dump()
    _override(data["server"], host=args.host, port=args.port, workers=args.workers)
    if args.session_store:
        data["sessions"]["store"] = args.session_store
    if args.upstream or args.upstream_dialect:
        if not (args.upstream and args.upstream_dialect):
            raise ConfigError("--upstream and --upstream-dialect go together")
        data["backends"]["upstream"] = {
            "type": "upstream",
            "dialect": args.upstream_dialect,
            "url": args.upstream,
            "auth": upstream_auth_from_args(args),
            "options": upstream_params(args.upstream_param),
        }
        data["default_backend"] = "upstream"
    elif _upstream_flags_used(args):
        raise ConfigError("--upstream-auth, --upstream-user, ... need --upstream")
    source = args.config or "<embedded rosetta.yaml>"
    parsed = parse_settings(data, source)
    check_policy(parsed, source)  # before secrets are generated: a shared store needs one set
    return parsed


_UPSTREAM_FLAGS = (
    "upstream_auth",
    "upstream_user",
    "upstream_password",
    "upstream_token",
    "upstream_access_key",
)


def _upstream_flags_used(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) for name in _UPSTREAM_FLAGS) or bool(args.upstream_param)


def upstream_auth_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``auth`` section of the --upstream shortcut's backend."""
    static = {
        "user": args.upstream_user,
        "password": args.upstream_password,
        "token": args.upstream_token,
    }
    if args.upstream_access_key:
        access_key, sep, secret_key = args.upstream_access_key.partition(":")
        if not sep or not access_key or not secret_key:
            raise ConfigError("--upstream-access-key: expected AK:SK")
        static.update(access_key=access_key, secret_key=secret_key)
    given = {k: v for k, v in static.items() if v}
    mode = args.upstream_auth or ("static" if given else "passthrough")
    if mode == "passthrough" and given:
        raise ConfigError(
            "--upstream-auth passthrough forwards each caller's own credentials; "
            "--upstream-user/--upstream-password/--upstream-token/--upstream-access-key "
            "are for --upstream-auth static"
        )
    return {"mode": mode, **given}


def upstream_params(specs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--upstream-param {spec!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


def _override(section: dict[str, Any], **values: Any) -> None:
    for key, value in values.items():
        if value is not None:
            section[key] = value


def resolve_secrets(settings: Settings, *, announce: bool = True) -> Settings:
    """Fill what the config leaves to start-up: generated passwords (printed once, to the
    terminal, never logged) and the session secret shared by all workers."""
    data = settings.model_dump()
    for user in data["users"]:
        if not user["password"] and not user["password_hash"] and user["generate_password"]:
            user["password"] = secrets.token_urlsafe(18)
            if announce:
                print(
                    f"rosetta: generated password for user {user['name']!r}: {user['password']}"
                    " (set it in the config or environment to choose your own)",
                    file=sys.stderr,
                    flush=True,
                )
    if not data["sessions"]["secret"]:
        data["sessions"]["secret"] = secrets.token_urlsafe(32)
    return Settings.model_validate(data)


def run_server(settings: Settings, *, reload_settings: Callable[[], Settings] | None = None) -> int:
    """Serve until SIGTERM/SIGINT, letting requests in flight finish within the configured
    grace period. With ``reload_settings`` (and one worker) SIGHUP reloads the config."""
    import uvicorn

    from proxy import logs
    from proxy.allocator import release_large_buffers
    from proxy.app import build_runtime, create_app
    from proxy.gctune import tune_for_serving

    if settings.server.workers > 1 and settings.sessions.store == "memory":
        raise ConfigError(
            "sessions.store: the memory store lives inside one process; with "
            f"{settings.server.workers} workers sessions would split between them. "
            "Use --session-store redis://host:port/0, or --workers 1"
        )
    check_policy(settings, "<serve>")
    release_large_buffers()
    logs.configure(settings.logging.format, settings.logging.level)
    common: dict[str, Any] = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": "warning",
        "access_log": False,
        "server_header": settings.server.server_header,
        "lifespan": "on",
        "timeout_graceful_shutdown": settings.server.shutdown_grace_seconds,
        **server_options(settings.server.tls, "server.tls"),
    }
    if settings.server.workers == 1:
        app = create_app(settings, runtime=build_runtime(settings), load_settings=reload_settings)
        tune_for_serving()
        uvicorn.run(app, **common)
        return 0
    build_runtime(settings)  # fail here, once, rather than in every worker
    os.environ[RESOLVED_SETTINGS_ENV] = settings.model_dump_json()
    # every worker writes its metrics to files here and /metrics merges them, whichever worker
    # answers the scrape; set before the workers start, so their prometheus_client sees it
    if MULTIPROC_ENV not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="rosetta-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, True)
        os.environ[MULTIPROC_ENV] = metrics_dir
    from proxy.supervisor import Supervisor

    options = {k: v for k, v in common.items() if k not in ("host", "port")}
    host, port = settings.server.host, settings.server.port
    return Supervisor(settings.server.workers, host, port, options).run()


# check ----------------------------------------------------------------------------------------
def _check(args: argparse.Namespace) -> int:
    from proxy.app import build_runtime

    loaded = load_settings(args.config)
    check_policy(loaded, args.config or "<embedded rosetta.yaml>")
    server_options(loaded.server.tls, "server.tls")
    build_runtime(resolve_secrets(loaded, announce=False))
    source = args.config or "embedded default"
    print(f"ok: {source}: {len(loaded.inbound)} inbound dialects, {len(loaded.backends)} backends")
    return 0


# emulate --------------------------------------------------------------------------------------
def _emulate(args: argparse.Namespace) -> int:
    settings = resolve_secrets(emulator_settings(args))
    return run_server(settings)


def emulator_settings(args: argparse.Namespace) -> Settings:
    users = []
    for spec in args.user:
        name, sep, password = spec.partition(":")
        if not sep or not name or not password:
            raise ConfigError(f"--user {spec!r}: expected NAME:PASSWORD")
        users.append({"name": name, "password": password, "role": "admin"})
    if not users:
        users.append({"name": "admin", "role": "admin", "generate_password": True})
    keys = []
    for spec in args.access_key:
        ak, sep, sk = spec.partition(":")
        if not sep or not ak or not sk:
            raise ConfigError(f"--access-key {spec!r}: expected AK:SK")
        keys.append({"access_key": ak, "secret_key": sk, "user": users[0]["name"]})
    data = {
        "server": {"host": args.host or "127.0.0.1", "port": args.port or 8080},
        "inbound": {args.dialect: {}},
        "backends": {
            "local": {"type": "local", "node_id": args.node_id, "sessions_file": args.sessions}
        },
        "users": users,
        "tokens": [{"token": t, "user": users[0]["name"]} for t in args.token],
        "access_keys": keys,
    }
    return parse_settings(data, f"<emulate {args.dialect}>")


# dialects -------------------------------------------------------------------------------------
def _dialects(_args: argparse.Namespace) -> int:
    for name, cls in available().items():
        print(f"{name}  ({cls.__module__}.{cls.__qualname__})")
        for route in cls.routes:
            print(f"    {','.join(route.methods):<20} {route.path}")
    return 0


# translate ------------------------------------------------------------------------------------
def _translate(args: argparse.Namespace) -> int:
    from proxy.offline import translate_file

    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    output = translate_file(
        raw,
        source=args.source,
        target=args.target,
        response=args.response,
        operation=args.operation,
        canonical=args.canonical,
    )
    sys.stdout.write(output)
    return 0


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
