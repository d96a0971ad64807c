"""The Redis ChatStore, for deployments with several server processes sharing one Redis.

Layout (every key under one prefix):
  seq                      the write counter (INCR)
  m:{id}                   hash: body (JSON), ord, seq, ch, created, toks, assignee
  log:{channel}            sorted set id -> ord: the channel's timeline (history pages)
  upd:{channel}            sorted set id -> seq: last change per message (sync)
  thr:{root}               sorted set id -> ord: replies of a thread
  idem:{author}:{client}   message id of an idempotent send
  ix:{channel}:{term}      sorted set id -> created: the inverted search index (words, CJK chars+bigrams)
  task:u:{login}           sorted set id -> ord: tasks assigned to login; task:due: open tasks -> due
  users, org, ch:{id}, chname, channels, chm:{id} (login -> last read), uch:{login}
  f:{id}                   a file record (JSON); fch:{id} set of channels with a live message carrying it;
  fref:{id}                hash message id -> channel of the live messages carrying it; fat:{id} attached_at
  fsha:{sha256}            set of file ids stored as that blob; fup:{login} sorted set "id|size" -> created
  funatt                   sorted set id -> created of files never attached (the sweep's queue)

Every message write is one Lua script, so a write and its indexes land together and in counter order.
Durability is Redis's: run it with `appendonly yes` (and `appendfsync always` to survive power loss).
"""

from __future__ import annotations

import asyncio

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import redis.asyncio as aioredis

from chat.errors import ChannelExists, MessageNotFound
from chat.model import (
    Channel,
    FileMeta,
    Membership,
    Message,
    OrgSettings,
    SearchQuery,
    User,
)
from chat.store import Mutation
from chat.textindex import index_keys, matches, query_keys

_INDEX_LUA = """
local function index(p, id, ch, score, toks)
  for tok in string.gmatch(toks, '[^\\n]+') do
    redis.call('ZADD', p .. 'ix:' .. ch .. ':' .. tok, score, id)
  end
end
local function unindex(p, id, ch, toks)
  if not toks then return end
  for tok in string.gmatch(toks, '[^\\n]+') do
    redis.call('ZREM', p .. 'ix:' .. ch .. ':' .. tok, id)
  end
end
local function task_index(p, id, ord, assignee, open, due)
  if assignee ~= '' then redis.call('ZADD', p .. 'task:u:' .. assignee, ord, id) end
  if open == '1' and due ~= '' then redis.call('ZADD', p .. 'task:due', due, id) end
end
"""

INSERT_LUA = _INDEX_LUA + """
local p, id, ch, author, cid, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local created, assignee, open, due, toks, thread = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if cid ~= '' then
  local existing = redis.call('GET', p .. 'idem:' .. author .. ':' .. cid)
  if existing then return {0, existing} end
end
local seq = redis.call('INCR', p .. 'seq')
redis.call('HSET', p .. 'm:' .. id, 'body', body, 'ord', seq, 'seq', seq, 'ch', ch, 'created', created,
           'toks', toks, 'assignee', assignee)
redis.call('ZADD', p .. 'log:' .. ch, seq, id)
redis.call('ZADD', p .. 'upd:' .. ch, seq, id)
if thread ~= '' then redis.call('ZADD', p .. 'thr:' .. thread, seq, id) end
if cid ~= '' then redis.call('SET', p .. 'idem:' .. author .. ':' .. cid, id) end
index(p, id, ch, created, toks)
task_index(p, id, seq, assignee, open, due)
return {1, tostring(seq)}
"""

UPDATE_LUA = _INDEX_LUA + """
local p, id, expected, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local assignee, open, due, toks = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local key = p .. 'm:' .. id
local cur = redis.call('HMGET', key, 'seq', 'ch', 'toks', 'assignee', 'ord', 'created')
if not cur[1] then return -1 end
if cur[1] ~= expected then return 0 end
local ch, ord = cur[2], cur[5]
unindex(p, id, ch, cur[3])
if cur[4] and cur[4] ~= '' then redis.call('ZREM', p .. 'task:u:' .. cur[4], id) end
redis.call('ZREM', p .. 'task:due', id)
local seq = redis.call('INCR', p .. 'seq')
redis.call('HSET', key, 'body', body, 'seq', seq, 'toks', toks, 'assignee', assignee)
redis.call('ZADD', p .. 'upd:' .. ch, seq, id)
index(p, id, ch, cur[6], toks)
task_index(p, id, ord, assignee, open, due)
return seq
"""

# ARGV: prefix, min, max, limit, nchannels, channels..., nterms, terms...
SEARCH_LUA = """
local p, lo, hi, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local nch = tonumber(ARGV[5])
local nterm = tonumber(ARGV[6 + nch])
local cand = {}
for c = 1, nch do
  local ch = ARGV[5 + c]
  local keys, smallest, size = {}, nil, nil
  local empty = false
  for t = 1, nterm do
    local k = p .. 'ix:' .. ch .. ':' .. ARGV[6 + nch + t]
    local n = redis.call('ZCARD', k)
    if n == 0 then empty = true break end
    table.insert(keys, k)
    if not size or n < size then smallest, size = k, n end
  end
  if not empty and smallest then
    local found, offset = 0, 0
    while found < limit do
      local page = redis.call('ZREVRANGEBYSCORE', smallest, hi, lo, 'WITHSCORES', 'LIMIT', offset, 256)
      if #page == 0 then break end
      for i = 1, #page, 2 do
        local ok = true
        for _, k in ipairs(keys) do
          if k ~= smallest and not redis.call('ZSCORE', k, page[i]) then ok = false break end
        end
        if ok then
          table.insert(cand, {tonumber(page[i + 1]), page[i], page[i + 1]})
          found = found + 1
          if found >= limit then break end
        end
      end
      offset = offset + 256
    end
  end
end
table.sort(cand, function(a, b) return a[1] > b[1] end)
local out = {}
for i = 1, math.min(limit, #cand) do
  table.insert(out, cand[i][2]); table.insert(out, cand[i][3])
end
return out
"""

SET_READ_LUA = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(cur) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def _task_args(m: Message) -> tuple[str, str, str]:
    task = m.task
    if task is None or m.deleted:
        return "", "0", ""
    return task.assignee or "", "1" if task.is_open else "0", "" if task.due is None else repr(task.due)


# ARGV: prefix, file id, message id, channel id, at
ATTACH_LUA = """
local p, id, mid, ch, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', p .. 'f:' .. id) == 0 then return 0 end
redis.call('HSET', p .. 'fref:' .. id, mid, ch)
redis.call('SADD', p .. 'fch:' .. id, ch)
redis.call('SETNX', p .. 'fat:' .. id, at)
redis.call('ZREM', p .. 'funatt', id)
return 1
"""

# ARGV: prefix, file id, message id, channel id
DETACH_LUA = """
local p, id, mid, ch = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
redis.call('HDEL', p .. 'fref:' .. id, mid)
for _, other in ipairs(redis.call('HVALS', p .. 'fref:' .. id)) do
  if other == ch then return 0 end
end
redis.call('SREM', p .. 'fch:' .. id, ch)
return 1
"""

# ARGV: prefix, file id. Deletes the record and its index entries only while it is still unattached.
DELETE_UNATTACHED_LUA = """
local p, id = ARGV[1], ARGV[2]
local raw = redis.call('GET', p .. 'f:' .. id)
if not raw then return 0 end
if redis.call('EXISTS', p .. 'fat:' .. id) == 1 or redis.call('SCARD', p .. 'fch:' .. id) > 0 then return 0 end
local meta = cjson.decode(raw)
if meta.attached_at ~= nil and meta.attached_at ~= cjson.null then return 0 end
-- Stored before attach tracking with channels: it was posted (fch may be empty after a recall).
if type(meta.channels) == 'table' and #meta.channels > 0 then return 0 end
redis.call('DEL', p .. 'f:' .. id, p .. 'fch:' .. id, p .. 'fref:' .. id)
redis.call('ZREM', p .. 'funatt', id)
redis.call('SREM', p .. 'fsha:' .. meta.sha256, id)
redis.call('ZREM', p .. 'fup:' .. meta.uploader, id .. '|' .. string.format('%d', meta.size))
return 1
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisChatStore:
    def __init__(self, url: str, prefix: str = "convene:chat:") -> None:
        self._url = url
        self._p = prefix
        self._r: aioredis.Redis | None = None

    @property
    def r(self) -> aioredis.Redis:
        assert self._r is not None, "store not open"
        return self._r

    async def open(self) -> None:
        # A blocking pool: a burst of concurrent writes waits for a connection instead of failing.
        pool = aioredis.BlockingConnectionPool.from_url(self._url, max_connections=32, timeout=30,
                                                        decode_responses=True)
        self._r = aioredis.Redis(connection_pool=pool)
        await self._r.ping()
        self._insert = self._r.register_script(INSERT_LUA)
        self._update = self._r.register_script(UPDATE_LUA)
        self._search = self._r.register_script(SEARCH_LUA)
        self._set_read = self._r.register_script(SET_READ_LUA)
        self._attach = self._r.register_script(ATTACH_LUA)
        self._detach = self._r.register_script(DETACH_LUA)
        self._delete_unattached = self._r.register_script(DELETE_UNATTACHED_LUA)
        await self._index_old_files()

    async def close(self) -> None:
        if self._r is not None:
            client, self._r = self._r, None
            try:  # bounded, like the bus: shutdown must not hang on one connection
                await asyncio.wait_for(client.aclose(), 5)
            except (TimeoutError, OSError):
                pass

    # Organisation -----------------------------------------------------------------------------

    async def get_org(self) -> OrgSettings:
        raw = await self.r.get(self._p + "org")
        return OrgSettings.from_wire(json.loads(raw)) if raw else OrgSettings()

    async def put_org(self, org: OrgSettings) -> None:
        await self.r.set(self._p + "org", json.dumps(org.to_wire()))

    async def put_user(self, user: User) -> None:
        await self.r.hset(self._p + "users", user.login, json.dumps(user.to_wire()))

    async def get_user(self, login: str) -> User | None:
        raw = await self.r.hget(self._p + "users", login)
        return User.from_wire(json.loads(raw)) if raw else None

    async def list_users(self) -> list[User]:
        raw = await self.r.hgetall(self._p + "users")
        return sorted((User.from_wire(json.loads(v)) for v in raw.values()), key=lambda u: u.login)

    # Channels ---------------------------------------------------------------------------------

    async def create_channel(self, channel: Channel, members: Sequence[str]) -> Channel:
        if not await self.r.hsetnx(self._p + "chname", channel.name, channel.id):
            raise ChannelExists(f"a channel named {channel.name!r} exists", name=channel.name)
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(self._p + "ch:" + channel.id, json.dumps(channel.to_wire()))
            pipe.sadd(self._p + "channels", channel.id)
            for m in members:
                pipe.hsetnx(self._p + "chm:" + channel.id, m, 0)
                pipe.sadd(self._p + "uch:" + m, channel.id)
            await pipe.execute()
        return channel

    async def update_channel(self, channel: Channel) -> None:
        await self.r.set(self._p + "ch:" + channel.id, json.dumps(channel.to_wire()))

    async def get_channel(self, channel_id: str) -> Channel | None:
        raw = await self.r.get(self._p + "ch:" + channel_id)
        return Channel.from_wire(json.loads(raw)) if raw else None

    async def find_channel(self, name: str) -> Channel | None:
        cid = await self.r.hget(self._p + "chname", name)
        return await self.get_channel(str(cid)) if cid else None

    async def list_channels(self, kind: str | None = None) -> list[Channel]:
        ids = sorted(str(i) for i in await self.r.smembers(self._p + "channels"))
        if not ids:
            return []
        raws = await self.r.mget([self._p + "ch:" + i for i in ids])
        chans = [Channel.from_wire(json.loads(r)) for r in raws if r]
        return sorted((c for c in chans if kind is None or c.kind == kind), key=lambda c: c.name)

    async def add_members(self, channel_id: str, logins: Sequence[str]) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            for m in logins:
                pipe.hsetnx(self._p + "chm:" + channel_id, m, 0)
                pipe.sadd(self._p + "uch:" + m, channel_id)
            await pipe.execute()

    async def remove_members(self, channel_id: str, logins: Sequence[str]) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            for m in logins:
                pipe.hdel(self._p + "chm:" + channel_id, m)
                pipe.srem(self._p + "uch:" + m, channel_id)
            await pipe.execute()

    async def members(self, channel_id: str) -> list[str]:
        return sorted(str(k) for k in await self.r.hkeys(self._p + "chm:" + channel_id))

    async def is_member(self, channel_id: str, login: str) -> bool:
        return bool(await self.r.hexists(self._p + "chm:" + channel_id, login))

    async def memberships(self, login: str) -> list[Membership]:
        ids = sorted(str(i) for i in await self.r.smembers(self._p + "uch:" + login))
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for cid in ids:
                pipe.get(self._p + "ch:" + cid)
                pipe.hget(self._p + "chm:" + cid, login)
            got = await pipe.execute()
        rows: list[tuple[Channel, int]] = []
        for i in range(len(ids)):
            raw, last = got[2 * i], got[2 * i + 1]
            if raw and last is not None:
                rows.append((Channel.from_wire(json.loads(raw)), int(last)))
        async with self.r.pipeline(transaction=False) as pipe:
            for ch, last in rows:
                pipe.zcount(self._p + "log:" + ch.id, f"({last}", "+inf")
            counts = await pipe.execute()
        out = [Membership(ch, last, int(n)) for (ch, last), n in zip(rows, counts)]
        return sorted(out, key=lambda m: m.channel.name)

    async def channel_ids_of(self, login: str) -> list[str]:
        return sorted(str(i) for i in await self.r.smembers(self._p + "uch:" + login))

    async def set_read(self, channel_id: str, login: str, ord_: int) -> None:
        await self._set_read(keys=[self._p + "chm:" + channel_id], args=[login, ord_])

    # Messages ---------------------------------------------------------------------------------

    def _parse(self, fields: Sequence[Any]) -> Message | None:
        body, ord_, seq = fields[0], fields[1], fields[2]
        if body is None:
            return None
        return Message.from_wire(json.loads(body)).with_seq(int(ord_), int(seq))

    async def _load(self, ids: Sequence[Any]) -> list[Message]:
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hmget(self._p + "m:" + str(i), ["body", "ord", "seq"])
            rows = await pipe.execute()
        return [m for m in (self._parse(r) for r in rows) if m is not None]

    def _insert_args(self, message: Message) -> list[Any]:
        assignee, open_, due = _task_args(message)
        toks = "" if message.deleted else "\n".join(sorted(index_keys(message.search_text)))
        return [self._p, message.id, message.channel_id, message.author, message.client_id or "",
                json.dumps(message.to_wire(), ensure_ascii=False), repr(message.created_at), assignee, open_, due,
                toks, message.thread or ""]

    async def insert_message(self, message: Message) -> tuple[Message, bool]:
        created, value = await self._insert(args=self._insert_args(message))
        if int(created) == 0:
            existing = await self.get_message(str(value))
            assert existing is not None
            return existing, False
        return message.with_seq(int(value), int(value)), True

    async def insert_many(self, messages: Sequence[Message]) -> int:
        async with self.r.pipeline(transaction=False) as pipe:
            for m in messages:
                await self._insert(args=self._insert_args(m), client=pipe)
            results = await pipe.execute()
        return sum(1 for created, _ in results if int(created) == 1)

    async def get_message(self, message_id: str) -> Message | None:
        return self._parse(await self.r.hmget(self._p + "m:" + message_id, ["body", "ord", "seq"]))

    async def by_client_id(self, author: str, client_id: str) -> Message | None:
        mid = await self.r.get(f"{self._p}idem:{author}:{client_id}")
        return await self.get_message(str(mid)) if mid else None

    async def mutate_message(self, message_id: str, change: Mutation) -> Message:
        for _ in range(100):
            old = await self.get_message(message_id)
            if old is None:
                raise MessageNotFound(f"no message {message_id!r}")
            new = change(old)
            assignee, open_, due = _task_args(new)
            toks = "" if new.deleted else "\n".join(sorted(index_keys(new.search_text)))
            seq = int(await self._update(args=[
                self._p, message_id, str(old.seq), json.dumps(new.to_wire(), ensure_ascii=False),
                assignee, open_, due, toks]))
            if seq == -1:
                raise MessageNotFound(f"no message {message_id!r}")
            if seq > 0:
                return new.with_seq(old.ord, seq)
        raise RuntimeError(f"message {message_id} kept changing under us")

    async def history(self, channel_id: str, after: int | None, before: int | None, limit: int,
                      thread: str | None = None) -> list[Message]:
        key = self._p + ("thr:" + thread if thread is not None else "log:" + channel_id)
        if after is not None:
            ids = await self.r.zrangebyscore(key, f"({after}", "+inf", start=0, num=limit)
        else:
            top = f"({before}" if before is not None else "+inf"
            ids = (await self.r.zrevrangebyscore(key, top, "-inf", start=0, num=limit))[::-1]
        msgs = await self._load(ids)
        return [m for m in msgs if m.channel_id == channel_id]

    async def changes(self, channel_ids: Sequence[str], since: int, limit: int) -> list[Message]:
        if not channel_ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for cid in channel_ids:
                pipe.zrangebyscore(self._p + "upd:" + cid, f"({since}", "+inf", start=0, num=limit, withscores=True)
            pages = await pipe.execute()
        merged = sorted(((score, mid) for page in pages for mid, score in page))[:limit]
        msgs = await self._load([mid for _, mid in merged])
        # A message changed again between the two reads carries a newer seq: still correct to return.
        return sorted(msgs, key=lambda m: m.seq)

    async def current_seq(self) -> int:
        return int(await self.r.get(self._p + "seq") or 0)

    async def search(self, channel_ids: Sequence[str], query: SearchQuery) -> list[Message]:
        terms = query_keys(query.text)
        if not terms or not channel_ids:
            return []
        lo = f"({query.after!r}" if query.after is not None else "-inf"
        hi = f"({query.before!r}" if query.before is not None else "+inf"
        want = query.limit * 2 + 20
        flat = await self._search(args=[self._p, lo, hi, want, len(channel_ids), *channel_ids, len(terms), *terms])
        hits = sorted(((float(flat[i + 1]), flat[i]) for i in range(0, len(flat), 2)), reverse=True)
        out: list[Message] = []
        for m in await self._load([mid for _, mid in hits]):
            if m.deleted or (query.author is not None and m.author != query.author):
                continue
            if matches(query.text, m.search_text):
                out.append(m)
                if len(out) >= query.limit:
                    break
        return out

    async def tasks_of(self, assignee: str, open_only: bool) -> list[Message]:
        ids = await self.r.zrevrange(self._p + "task:u:" + assignee, 0, -1)
        msgs = await self._load(ids)
        return [m for m in msgs if m.task is not None and not m.deleted and (m.task.is_open or not open_only)]

    async def due_tasks(self, until: float) -> list[Message]:
        ids = await self.r.zrangebyscore(self._p + "task:due", "-inf", repr(until))
        return [m for m in await self._load(ids) if m.task is not None and m.task.is_open and not m.deleted]

    async def expired_messages(self, channel_id: str, before: float, limit: int) -> list[str]:
        out: list[str] = []
        offset = 0
        while len(out) < limit:
            ids = await self.r.zrange(self._p + "log:" + channel_id, offset, offset + 255)
            if not ids:
                break
            for m in await self._load(ids):
                if m.created_at >= before:
                    return out
                if not m.deleted:
                    out.append(m.id)
                    if len(out) >= limit:
                        break
            offset += 256
        return out

    # Files ------------------------------------------------------------------------------------

    def _index_file(self, pipe: Any, meta: FileMeta) -> None:
        pipe.sadd(self._p + "fsha:" + meta.sha256, meta.id)
        pipe.zadd(self._p + "fup:" + meta.uploader, {f"{meta.id}|{meta.size}": meta.created_at})
        if meta.attached_at is None and not meta.channels:
            pipe.zadd(self._p + "funatt", {meta.id: meta.created_at})

    async def _index_old_files(self) -> None:
        """Once per prefix: the blob, uploader and unattached indexes for records stored before them."""
        done = self._p + "files:indexed"
        if await self.r.exists(done):
            return
        async for key in self.r.scan_iter(match=_glob_escape(self._p) + "f:*", count=500):
            meta = await self.get_file(str(key)[len(self._p) + 2:])
            if meta is not None:
                async with self.r.pipeline(transaction=False) as pipe:
                    self._index_file(pipe, meta)
                    await pipe.execute()
        await self.r.set(done, "1")

    async def put_file(self, meta: FileMeta) -> None:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(self._p + "f:" + meta.id, json.dumps(meta.to_store(), ensure_ascii=False))
            for c in meta.channels:
                pipe.sadd(self._p + "fch:" + meta.id, c)
            if meta.attached_at is not None:
                pipe.set(self._p + "fat:" + meta.id, repr(meta.attached_at))
            self._index_file(pipe, meta)
            await pipe.execute()

    async def get_file(self, file_id: str) -> FileMeta | None:
        raw = await self.r.get(self._p + "f:" + file_id)
        if not raw:
            return None
        meta = FileMeta.from_store(json.loads(raw))
        channels = await self.r.smembers(self._p + "fch:" + file_id)
        attached = await self.r.get(self._p + "fat:" + file_id)
        return replace(meta, channels=tuple(sorted(str(c) for c in channels)),
                       attached_at=meta.attached_at if attached is None else float(attached))

    async def attach_file(self, file_id: str, message_id: str, channel_id: str, at: float) -> None:
        await self._attach(args=[self._p, file_id, message_id, channel_id, repr(at)])

    async def detach_file(self, file_id: str, message_id: str, channel_id: str) -> None:
        await self._detach(args=[self._p, file_id, message_id, channel_id])

    async def unattached_files(self, before: float, limit: int) -> list[FileMeta]:
        ids = await self.r.zrangebyscore(self._p + "funatt", "-inf", f"({before!r}", start=0, num=limit)
        out = [await self.get_file(str(i)) for i in ids]
        return [m for m in out if m is not None and m.attached_at is None and not m.channels]

    async def delete_unattached_file(self, file_id: str) -> bool:
        return bool(await self._delete_unattached(args=[self._p, file_id]))

    async def sha_in_use(self, sha256: str) -> bool:
        return bool(await self.r.scard(self._p + "fsha:" + sha256))

    async def uploaded_bytes(self, uploader: str, since: float) -> int:
        entries = await self.r.zrangebyscore(self._p + "fup:" + uploader, repr(since), "+inf")
        return sum(int(str(e).rpartition("|")[2] or 0) for e in entries)
