"""`convene serve --workers N`: this process is worker w0 (with chat and the web client); it starts
N-1 media workers on the next ports, sharing the data dir, and stops them when it stops."""

from __future__ import annotations

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
            *(["--trusted-proxies", ",".join(config.trusted_proxies)] if config.trusted_proxies else [])]


def spawn_workers(app: web.Application, config: Config) -> None:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        children = [subprocess.Popen(worker_command(config, i)) for i in range(1, config.workers)]
        yield
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()

    app.cleanup_ctx.append(ctx)
