"""Chat benchmark: `python -m loadtest.chat [--sockets N --rate R --duration S --history H]`.

For each store backend (embedded SQLite, PostgreSQL) it starts a real `convene serve` subprocess on 127.0.0.1,
connects N WebSocket clients to one channel, posts at R posts/s for S seconds over HTTP and measures:
delivery latency (post sent → event received on each socket) p50/p99, posts/s acknowledged, and
search latency (GET /v1/search) p50/p95/p99 over a generated history of H messages (30% Chinese).

Defaults are small so it runs in about a minute; the issue's targets are
`--sockets 1000 --rate 1000 --history 1000000`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from chat.auth import CHAT_ROOM
from chat.model import Channel, Message, SearchQuery, User, new_id
from chat.sql_store import SqlChatStore, message_values, term_rows_of
from loadtest.proc import cpu_seconds, free_port
from chat.store import ChatStore
from identity.secrets_store import load_or_create_secret
from identity.tokens import TokenIssuer
from store.database import Database
from store.engine import DB_FILE
from store.schema import chat_messages, chat_search_terms

ROOT = Path(__file__).resolve().parent.parent
CJK_WORDS = ["项目", "进度", "更新", "完成", "会议", "客户", "需求", "测试", "发布", "周报", "预算", "设计", "上线",
             "评审", "风险", "计划", "合同", "培训", "招聘", "报告"]






def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


@dataclass
class Result:
    backend: str
    sockets: int
    rate: float
    posts_acked: int
    posts_per_s: float
    deliveries: int
    expected_deliveries: int
    p50_ms: float
    p99_ms: float
    history: int
    fill_s: float
    search_p50_ms: float
    search_p95_ms: float
    search_p99_ms: float
    storage_mb: float
    server_cpu_pct: float


class Vocabulary:
    def __init__(self, rng: random.Random, size: int = 5000) -> None:
        # One word list for every Vocabulary (history and queries alike); `rng` picks from it.
        syllables = ["ka", "lo", "mi", "ren", "to", "sa", "vi", "dor", "pel", "qu", "an", "zy", "bro", "fen", "ti"]
        words: set[str] = set()
        pick = random.Random(7)
        while len(words) < size:
            words.add("".join(pick.choice(syllables) for _ in range(pick.randint(2, 4))))
        self.words = sorted(words)
        self.weights = [1.0 / (i + 1) for i in range(len(self.words))]  # Zipf
        self.cum_weights = list(itertools.accumulate(self.weights))  # once, not per sentence
        self.rng = rng

    def sentence(self) -> str:
        if self.rng.random() < 0.3:
            return "".join(self.rng.choice(CJK_WORDS) for _ in range(self.rng.randint(2, 6))) + f"：完成{self.rng.randint(1, 99)}%"
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_weights, k=self.rng.randint(4, 14)))

    def query(self) -> str:
        r = self.rng.random()
        mid = self.words[self.rng.randint(20, 1000)]
        if r < 0.5:
            return mid
        if r < 0.75:
            return f"{self.words[self.rng.randint(0, 50)]} {mid}"
        return self.rng.choice(CJK_WORDS)


async def fill_history(store: ChatStore, count: int, channels: list[str], rng: random.Random) -> float:
    vocab = Vocabulary(rng)
    started = time.perf_counter()
    now = time.time()
    batch = 2000
    for offset in range(0, count, batch):
        msgs = [Message(id=new_id("m_"), channel_id=channels[i % len(channels)], author=f"u{i % 50}", type="text",
                        content=vocab.sentence(), created_at=now - (count - i) * 5.0)
                for i in range(offset, min(count, offset + batch))]
        await store.insert_many(msgs)
        if offset and offset % 100_000 == 0:
            print(f"  … {offset:,} messages ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return time.perf_counter() - started


# Bulk fill (the store benchmark): rows built in a process pool, written by each backend's bulk path
# (SQLite: one executemany transaction per chunk; PostgreSQL: COPY), ords 1..count in order.

_CHUNK = 20_000


def _chunk_rows(job: tuple[int, int, int, list[str], float]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    start, stop, count, channels, now = job
    vocab = Vocabulary(random.Random(start * 7919 + 7))
    msg_rows: list[tuple[Any, ...]] = []
    term_rows: list[tuple[Any, ...]] = []
    for i in range(start, stop):
        m = Message(id=new_id("m_"), channel_id=channels[i % len(channels)], author=f"u{i % 50}", type="text",
                    content=vocab.sentence(), created_at=now - (count - i) * 5.0).with_seq(i + 1, i + 1)
        values = message_values(m)
        msg_rows.append(tuple(values[c.name] for c in chat_messages.c))
        term_rows.extend((t["term"], t["ord"], t["channel_id"]) for t in term_rows_of(m))
    term_rows.sort()  # in primary-key order: the (term, ord) b-tree is written in runs
    return msg_rows, term_rows


async def bulk_fill(pg_url: str | None, work: Path, count: int, channels: list[str]) -> float:
    """Writes `count` generated messages with their search terms; returns the seconds it took."""
    started = time.perf_counter()
    now = time.time()
    jobs = [(a, min(count, a + _CHUNK), count, channels, now) for a in range(0, count, _CHUNK)]
    msg_cols = [c.name for c in chat_messages.c]
    term_cols = [c.name for c in chat_search_terms.c]
    with multiprocessing.get_context("fork").Pool(max(1, (os.cpu_count() or 2))) as pool:
        chunks = pool.imap(_chunk_rows, jobs)
        if pg_url is None:
            import sqlite3

            db = sqlite3.connect(work / DB_FILE, isolation_level=None)
            # Fill only: no fsync per transaction and a big page cache (the server keeps synchronous=FULL).
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-1000000")
            insert_m = f"INSERT INTO chat_messages ({','.join(msg_cols)}) VALUES ({','.join('?' * len(msg_cols))})"
            insert_t = f"INSERT INTO chat_search_terms ({','.join(term_cols)}) VALUES (?,?,?)"
            done = 0
            for msg_rows, term_rows in chunks:
                db.execute("BEGIN IMMEDIATE")
                db.executemany(insert_m, msg_rows)
                db.executemany(insert_t, term_rows)
                db.execute("UPDATE counters SET value = ? WHERE name = 'chat_seq'", (done + len(msg_rows),))
                db.execute("COMMIT")
                done += len(msg_rows)
                _progress(done, started)
            db.close()
        else:
            import asyncpg  # type: ignore[import-untyped]

            conn = await asyncpg.connect(pg_url)
            try:
                done = 0
                for msg_rows, term_rows in chunks:
                    async with conn.transaction():
                        await conn.copy_records_to_table("chat_messages", records=msg_rows, columns=msg_cols)
                        await conn.copy_records_to_table("chat_search_terms", records=term_rows, columns=term_cols)
                        await conn.execute("UPDATE counters SET value = $1 WHERE name = 'chat_seq'",
                                           done + len(msg_rows))
                    done += len(msg_rows)
                    _progress(done, started)
                # What autovacuum would do after a bulk load: planner statistics, the visibility map.
                await conn.execute("VACUUM ANALYZE chat_messages")
                await conn.execute("VACUUM ANALYZE chat_search_terms")
            finally:
                await conn.close()
    return time.perf_counter() - started


def _progress(done: int, started: float) -> None:
    if done % 100_000 == 0:
        print(f"  … {done:,} messages ({time.perf_counter() - started:.0f} s, load {loadavg()})",
              file=sys.stderr, flush=True)


def loadavg() -> str:
    """The 1-minute load average (the machine is shared: the figures say how busy it was)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def storage_mb(data: Path, pg: Any) -> float:
    """MB the store takes: the PostgreSQL databases, or the SQLite files."""
    if pg is not None:
        return round(float(pg.psql("SELECT sum(pg_database_size(datname)) FROM pg_database")) / 1e6, 1)
    return round(sum(f.stat().st_size for f in data.rglob("*.db*")) / 1e6, 1)


def start_pg() -> Any:
    from tests.postgres import start_postgres

    return start_postgres(fsync=True)  # durable like SQLite's synchronous=FULL


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit("convene serve exited")
            try:
                async with s.get(url + "/v1/openapi.json") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("convene serve did not start")


async def run_backend(backend: str, args: argparse.Namespace) -> Result:
    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix=f"convene-bench-{backend}-"))
    data = work / "data"
    pg = start_pg() if backend == "postgres" else None
    database_url = pg.create_database() if pg is not None else None
    server = None
    try:
        # Users, the channels and the generated history go straight into the store before the server starts.
        store: ChatStore = SqlChatStore(Database.for_config(database_url, data))
        await store.open()
        logins = [f"s{i}" for i in range(args.sockets)]
        for login in ["poster", "searcher", *logins]:
            await store.put_user(User(login=login, role="member", created_at=time.time()))
        live = await store.create_channel(Channel(id=new_id("c_"), name="live", kind="team", created_by="poster"),
                                          ["poster", *logins])
        history_channels = []
        for i in range(20):
            ch = await store.create_channel(Channel(id=new_id("c_"), name=f"h{i}", kind="team"),
                                            ["searcher"] if i < 10 else [])
            history_channels.append(ch.id)
        print(f"[{backend}] generating {args.history:,} messages…", file=sys.stderr, flush=True)
        fill_s = await fill_history(store, args.history, history_channels, rng)
        await store.close()
        size_mb = storage_mb(data, pg)
        issuer = TokenIssuer(load_or_create_secret(data))

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "signaling.cli", "serve", "--port", str(port), "--data-dir", str(data)]
        if database_url:
            cmd += ["--database-url", database_url]
        env = {**os.environ, "CONVENE_CHAT_RATE": "1000000", "CONVENE_CHAT_BURST": "1000000", "HF_HUB_OFFLINE": "1"}
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await wait_up(url, server)

        latencies: list[float] = []
        received = 0
        stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def listen(login: str, ready: asyncio.Event) -> None:
                nonlocal received
                token = issuer.mint(CHAT_ROOM, login, ttl_seconds=3600)
                async with session.ws_connect(f"{url}/v1/chat/ws", max_msg_size=0) as ws:
                    await ws.send_str(json.dumps({"type": "auth", "token": token}))
                    hello = await ws.receive()  # subscribed once the server says hello
                    if hello.type != aiohttp.WSMsgType.TEXT or json.loads(hello.data).get("type") != "hello":
                        raise RuntimeError(f"chat socket refused {login}: {hello.data!r}")
                    ready.set()
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if '"type":"message"' not in msg.data:
                            continue
                        ev = json.loads(msg.data)
                        content = ev["message"]["content"]
                        if content.startswith("t="):
                            latencies.append(time.time() - float(content[2:]))
                            received += 1
                        if stop.is_set():
                            break

            readies = [asyncio.Event() for _ in logins]
            listeners = []
            for i, (login, ready) in enumerate(zip(logins, readies)):
                listeners.append(asyncio.create_task(listen(login, ready)))
                if i % 50 == 49:
                    await asyncio.sleep(0.05)
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
            await asyncio.sleep(0.5)

            poster = issuer.mint(CHAT_ROOM, "poster", ttl_seconds=3600)
            headers = {"Authorization": f"Bearer {poster}"}
            acked = 0
            inflight = asyncio.Semaphore(64)

            async def post() -> None:
                nonlocal acked
                async with inflight:
                    async with session.post(url + "/v1/messages", headers=headers,
                                            json={"to": live.id, "content": f"t={time.time():.6f}"}) as r:
                        if r.status == 201:
                            acked += 1

            print(f"[{backend}] {args.sockets} sockets, {args.rate:g} posts/s for {args.duration:g} s…",
                  file=sys.stderr, flush=True)
            posts = []
            cpu_before = cpu_seconds(server.pid)
            started = time.perf_counter()
            total = int(args.rate * args.duration)
            for i in range(total):
                target = started + i / args.rate
                delay = target - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                posts.append(asyncio.create_task(post()))
            await asyncio.gather(*posts)
            elapsed = time.perf_counter() - started
            expected = acked * args.sockets
            deadline = time.monotonic() + 10
            while received < expected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            server_cpu = (cpu_seconds(server.pid) - cpu_before) / (time.perf_counter() - started) * 100
            stop.set()
            for t in listeners:
                t.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)

            print(f"[{backend}] searching…", file=sys.stderr, flush=True)
            searcher = {"Authorization": f"Bearer {issuer.mint(CHAT_ROOM, 'searcher', ttl_seconds=3600)}"}
            vocab = Vocabulary(random.Random(11))
            search_ms: list[float] = []
            for _ in range(args.queries):
                q = vocab.query()
                t0 = time.perf_counter()
                async with session.get(url + "/v1/search", params={"q": q, "limit": "20"}, headers=searcher) as r:
                    assert r.status == 200, await r.text()
                    await r.read()
                search_ms.append((time.perf_counter() - t0) * 1000)

        ms = [x * 1000 for x in latencies]
        return Result(backend=backend, sockets=args.sockets, rate=args.rate, posts_acked=acked,
                      posts_per_s=round(acked / elapsed, 1), deliveries=received, expected_deliveries=expected,
                      p50_ms=round(percentile(ms, 50), 1), p99_ms=round(percentile(ms, 99), 1),
                      history=args.history, fill_s=round(fill_s, 1),
                      search_p50_ms=round(percentile(search_ms, 50), 1),
                      search_p95_ms=round(percentile(search_ms, 95), 1),
                      search_p99_ms=round(percentile(search_ms, 99), 1), storage_mb=size_mb,
                      server_cpu_pct=round(server_cpu, 1))
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=100, help="WebSocket clients in the channel (default 100)")
    parser.add_argument("--rate", type=float, default=100.0, help="posts per second (default 100)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of posting (default 5)")
    parser.add_argument("--history", type=int, default=20_000, help="messages of generated history (default 20k)")
    parser.add_argument("--queries", type=int, default=200, help="search queries (default 200)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--json", action="store_true", help="print the results as JSON lines too")
    parser.add_argument("--store-bench", action="store_true",
                        help="benchmark the stores themselves (fill, writes, search, sync) instead of a server")
    parser.add_argument("--stores", default="sqlite,postgres", help="with --store-bench: sqlite,postgres")
    args = parser.parse_args(argv)
    if args.store_bench:
        stores = [asyncio.run(bench_store(k.strip(), args)) for k in args.stores.split(",") if k.strip()]
        print_store_results(stores, args.json)
        return 0
    results = [asyncio.run(run_backend(b.strip(), args)) for b in args.backends.split(",") if b.strip()]
    print(f"{'backend':8} {'sockets':>7} {'rate':>6} {'posts/s':>8} {'delivered':>12} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'history':>9} {'search p50':>10} {'p95':>6} {'p99':>6} {'store MB':>9} {'srv CPU%':>8}")
    for r in results:
        print(f"{r.backend:8} {r.sockets:>7} {r.rate:>6g} {r.posts_per_s:>8} {r.deliveries:>6}/{r.expected_deliveries:<5} "
              f"{r.p50_ms:>7} {r.p99_ms:>7} {r.history:>9,} {r.search_p50_ms:>10} {r.search_p95_ms:>6} "
              f"{r.search_p99_ms:>6} {r.storage_mb:>9} {r.server_cpu_pct:>8}")
        if args.json:
            print(json.dumps(r.__dict__))
    return 0


# The store benchmark: `python -m loadtest.chat --store-bench [--stores sqlite,postgres]` ----------------------
#
# The stores themselves, in this process (no HTTP), SQLite and PostgreSQL in one run: bulk fill of H
# messages (rows and search terms built in a process pool; SQLite executemany in 20k-message transactions,
# PostgreSQL COPY, then VACUUM ANALYZE as autovacuum would), write throughput of single posts (64 at once,
# each with a client_id, as the API sends them), search p50/p95 per kind of query (CJK word, English
# prefix, a word with an author filter) and sync of 10k missed events by 500-event pages. Every phase
# notes the 1-minute load average: the machine may be shared. `--history 1000000` is the size.


@dataclass
class StoreResult:
    store: str
    cores: int
    history: int
    fill_s: float
    fill_msgs_per_s: float
    write_msgs_per_s: float
    search: dict[str, tuple[float, float]]  # kind -> (p50 ms, p95 ms)
    hits: dict[str, float]  # kind -> mean results per query
    sync_10k_ms: float
    storage_mb: float
    load: str  # 1-minute load averages: start, after the fill, after each search kind, at the end


def _prefix_query(vocab: Vocabulary) -> str:
    word = vocab.words[vocab.rng.randint(20, 1000)]
    return word[:max(3, len(word) - 2)]


def store_queries(kind: str, vocab: Vocabulary) -> SearchQuery:
    if kind == "cjk":
        return SearchQuery(vocab.rng.choice(CJK_WORDS), limit=20)
    if kind == "prefix":
        return SearchQuery(_prefix_query(vocab), limit=20)
    # A filter: a common word from one author.
    return SearchQuery(vocab.words[vocab.rng.randint(0, 50)], author=f"u{vocab.rng.randint(0, 49)}", limit=20)


async def _open_store(kind: str, work: Path) -> tuple[SqlChatStore, Any, str | None]:
    if kind == "sqlite":
        return SqlChatStore(Database.for_config(None, work)), None, None
    if kind == "postgres":
        server = start_pg()
        url = server.create_database()
        return SqlChatStore(Database.for_config(url, work)), server, url
    raise SystemExit(f"unknown store {kind!r} (sqlite, postgres)")


async def bench_store(kind: str, args: argparse.Namespace) -> StoreResult:
    work = Path(tempfile.mkdtemp(prefix=f"convene-store-{kind}-"))
    store, pg, pg_url = await _open_store(kind, work)
    loads = [loadavg()]
    try:
        await store.open()
        channels = []
        for i in range(20):
            ch = await store.create_channel(Channel(id=new_id("c_"), name=f"h{i}", kind="team"),
                                            ["searcher"] if i < 10 else [])
            channels.append(ch.id)
        print(f"[{kind}] filling {args.history:,} messages…", file=sys.stderr, flush=True)
        fill_s = await bulk_fill(pg_url, work, args.history, channels)
        loads.append(loadavg())

        vocab = Vocabulary(random.Random(5))
        posts = 3000
        started = time.perf_counter()
        sem = asyncio.Semaphore(64)

        async def post(i: int) -> None:
            async with sem:
                await store.insert_message(Message(id=new_id("m_"), channel_id=channels[i % 20], author="poster",
                                                   type="text", content=vocab.sentence(), created_at=time.time(),
                                                   client_id=f"p{i}"))

        await asyncio.gather(*(post(i) for i in range(posts)))
        write_rate = posts / (time.perf_counter() - started)

        mine = channels[:10]
        search: dict[str, tuple[float, float]] = {}
        hits: dict[str, float] = {}
        qvocab = Vocabulary(random.Random(11))
        for qkind in ("cjk", "prefix", "filter"):
            times: list[float] = []
            found = 0
            for _ in range(args.queries):
                q = store_queries(qkind, qvocab)
                t0 = time.perf_counter()
                found += len(await store.search(mine, q))
                times.append((time.perf_counter() - t0) * 1000)
            search[qkind] = (round(percentile(times, 50), 2), round(percentile(times, 95), 2))
            hits[qkind] = round(found / args.queries, 1)
            loads.append(loadavg())

        since = await store.current_seq()
        await store.insert_many([Message(id=new_id("m_"), channel_id=mine[i % 10], author="poster", type="text",
                                         content=vocab.sentence(), created_at=time.time()) for i in range(10_000)])
        t0 = time.perf_counter()
        seen = 0
        while True:
            page = await store.changes(mine, since, 500)
            if not page:
                break
            seen += len(page)
            since = page[-1].seq
        sync_ms = (time.perf_counter() - t0) * 1000
        assert seen == 10_000, seen
        await store.close()
        size_mb = storage_mb(work, pg)
        loads.append(loadavg())
        return StoreResult(kind, os.cpu_count() or 0, args.history, round(fill_s, 1),
                           round(args.history / fill_s), round(write_rate), search, hits, round(sync_ms, 1), size_mb,
                           " ".join(loads))
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def print_store_results(results: list[StoreResult], as_json: bool) -> None:
    print(f"{'store':10} {'cores':>5} {'history':>9} {'fill msg/s':>10} {'write msg/s':>11} "
          f"{'cjk p50/p95':>12} {'prefix p50/p95':>14} {'filter p50/p95':>14} {'sync 10k ms':>11} {'MB':>7}")
    for r in results:
        s = {k: f"{v[0]}/{v[1]}" for k, v in r.search.items()}
        print(f"{r.store:10} {r.cores:>5} {r.history:>9,} {r.fill_msgs_per_s:>10,} {r.write_msgs_per_s:>11,} "
              f"{s['cjk']:>12} {s['prefix']:>14} {s['filter']:>14} {r.sync_10k_ms:>11} {r.storage_mb:>7}"
              f"   hits/query {r.hits}   load {r.load}")
        if as_json:
            print(json.dumps(r.__dict__))


if __name__ == "__main__":
    sys.exit(main())
