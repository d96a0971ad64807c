"""`convene serve --workers N`: this process is worker w0 (with chat and the web client); it starts
N-1 media workers on the next ports, sharing the data dir, and stops them when it stops."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from common.config import Config


def worker_command(config: Config, index: int) -> list[str]:
    return [sys.executable, "-m", "signaling.cli", "serve", "--host", config.host,
            "--port", str(config.port + index), "--data-dir", str(config.data_dir),
            "--worker-id", f"w{index}", "--per-worker", str(config.per_worker), "--media-only",
            # Pages served by the first worker open their signaling socket on this one.
            "--allowed-origins", ",".join((config.url, *config.allowed_origins)),
            *(["--ice-allow-link-local"] if config.ice_allow_link_local else []),
            # The certificate the first worker loaded (or made, when self-signed): browsers reach every worker.
            *(["--tls-cert", str(config.tls_cert), "--tls-key", str(config.tls_key)]
              if config.tls_cert is not None and config.tls_key is not None else []),
            *(["--trusted-proxies", ",".join(config.trusted_proxies)] if config.trusted_proxies else []),
            *ice_flags(config)]


def ice_flags(config: Config) -> list[str]:
    """ICE settings for a worker (the TURN secret goes in its environment: see worker_env)."""
    flags = []
    if config.announce_ip:
        flags += ["--announce-ip", config.announce_ip]
    if config.rtc_ips:
        flags += ["--rtc-ips", ",".join(config.rtc_ips)]
    if config.rtc_port_range:
        flags += ["--rtc-port-range", f"{config.rtc_port_range[0]}-{config.rtc_port_range[1]}"]
    if config.turn_urls:
        flags += ["--turn-url", ",".join(config.turn_urls)]
    if config.stun_url:
        flags += ["--stun-url", config.stun_url]
    return flags


def worker_env(config: Config) -> dict[str, str]:
    """This process's environment, with the TURN secret, the database URL and the secret file (a command line is
    readable by every local user)."""
    env = dict(os.environ)
    if config.turn_secret:
        env["CONVENE_TURN_SECRET"] = config.turn_secret
    # One store, one secret for all workers: the meeting ledger and room directory live in the store. A database
    # URL may carry a password, so it goes here too, not on the command line.
    if config.database_url:
        env["CONVENE_DATABASE_URL"] = config.database_url
    if config.token_secret_file is not None:
        env["CONVENE_TOKEN_SECRET_FILE"] = str(config.token_secret_file)
    if config.files_dir is not None:
        env["CONVENE_FILES_DIR"] = str(config.files_dir)
    if config.metrics_token_file is not None:  # each worker answers /metrics on its own port
        env["CONVENE_METRICS_TOKEN_FILE"] = str(config.metrics_token_file)
    return env


def spawn_workers(app: web.Application, config: Config) -> None:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        children = [subprocess.Popen(worker_command(config, i), env=worker_env(config))
                    for i in range(1, config.workers)]
        yield
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()

    app.cleanup_ctx.append(ctx)
