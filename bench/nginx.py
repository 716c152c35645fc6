"""nginx configurations for the benchmark, each an unprivileged instance in its own temp
directory (own pid file, error log and temp paths; ``daemon off`` so the harness owns the
process): the static GeminiDB/canonical upstream, a plain ``proxy_pass`` in front of it, and
the njs translator."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from bench import payloads
from bench.procs import Server, free_port, start_server

NJS_MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
NJS_SCRIPT = Path(__file__).resolve().parent / "njs" / "faircom_geminidb.js"
GEMINIDB_PATH = f"/v3/{payloads.PROJECT_ID}/instances/{payloads.INSTANCE_ID}/sessions"
CANONICAL_PATH = "/rosetta/v1/session.list"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )


def _common(prefix: Path, workers: str, modules: str = "") -> str:
    return f"""{modules}
worker_processes {workers};
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
"""


def _http_common(prefix: Path) -> str:
    return f"""
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
"""


_GEMINIDB_401 = '{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information"}'
_ROSETTA_401 = (
    '{"operation":"session.list","error":{"kind":"unauthenticated","message":"bad upstream token"}}'
)
_NOT_SERVED = '{"error_code":"DBS.200001","error_msg":"not served by the bench upstream"}'


def upstream_conf(prefix: Path, static: Path, port: int, token: str, workers: str) -> str:
    """The upstream: the GeminiDB list-sessions reply and the canonical list reply as static
    files; a wrong or missing upstream token gets each dialect's 401."""
    return (
        _common(prefix, workers)
        + f"""
http {{{_http_common(prefix)}
    server {{
        listen 127.0.0.1:{port};
        root {static};
        default_type application/json;
        location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
        location = {GEMINIDB_PATH} {{
            if ($http_x_auth_token != "{token}") {{
                return 401 '{_GEMINIDB_401}';
            }}
            try_files /{payloads.GEMINIDB_FILE} =404;
        }}
        location = {CANONICAL_PATH} {{
            if ($http_authorization != "Bearer {token}") {{
                return 401 '{_ROSETTA_401}';
            }}
            error_page 405 =200 {CANONICAL_PATH};  # the static module refuses POST: serve it as GET
            try_files /{payloads.CANONICAL_FILE} =404;
        }}
        location / {{
            return 404 '{_NOT_SERVED}';
        }}
    }}
}}
"""
    )


def proxy_conf(prefix: Path, port: int, upstream_port: int, workers: str) -> str:
    """Row 2: ``proxy_pass`` with a keep-alive pool, no translation."""
    return (
        _common(prefix, workers)
        + f"""
http {{{_http_common(prefix)}
    upstream bench_upstream {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    )


def njs_conf(
    prefix: Path,
    port: int,
    upstream_port: int,
    caller_token: str,
    upstream_token: str,
    workers: str,
) -> str:
    """Row 3: njs translates FairCom listSessions to a GeminiDB subrequest and back."""
    return (
        _common(prefix, workers, f"load_module {NJS_MODULE};")
        + f"""
http {{{_http_common(prefix)}
    js_path {NJS_SCRIPT.parent};
    js_import bench from {NJS_SCRIPT.name};
    upstream gemini {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
    client_body_buffer_size 64k;
    subrequest_output_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port};
        set $bench_caller_token "{caller_token}";
        location = /healthz {{ return 200 '{{"status":"ok"}}'; }}
        location = /api {{ js_content bench.listSessions; }}
        location /api/ {{ js_content bench.listSessions; }}
        location = /_gemini {{
            internal;
            proxy_pass http://gemini{GEMINIDB_PATH};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Auth-Token "{upstream_token}";
            proxy_set_header Content-Type "";
            proxy_set_header Content-Length "";
            proxy_pass_request_body off;
        }}
    }}
}}
"""
    )


def start_nginx(name: str, workdir: Path, conf_text: str, port: int) -> Server:
    prefix = workdir / name
    prefix.mkdir(parents=True, exist_ok=True)
    prefix.chmod(0o755)  # workers run as nobody when the harness runs as root
    conf = prefix / "nginx.conf"
    conf.write_text(conf_text)
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (bench/setup installs it)")
    return start_server(
        name,
        [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        port,
        prefix / "stdout.log",
        stop_signal=signal.SIGQUIT,
    )


def start_upstream(workdir: Path, token: str, workers: str) -> Server:
    static = workdir / "static"
    payloads.write_all(static)
    static.chmod(0o755)
    port = free_port()
    return start_nginx(
        "nginx-upstream",
        workdir,
        upstream_conf(workdir / "nginx-upstream", static, port, token, workers),
        port,
    )
