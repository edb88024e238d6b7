#!/usr/bin/env python3
"""IMAP concurrency stress test with a model checker (stdlib only, Python 3.11).

N clients log in as M users, several sessions per mailbox at once (phone, laptop,
browser), and run a random mix of SELECT/EXAMINE, FETCH, STORE, UID STORE, EXPUNGE,
UID EXPUNGE, APPEND, COPY, MOVE, NOOP, IDLE, STATUS and SEARCH, while a delivery task
hands new mail to the server (SMTP to Lifeboat's fallback listener, LMTP to Dovecot).
Every response is checked against one model per user's mailbox, shared by all sessions
of that user. It prints operations, errors (tagged NO/BAD) by kind, and violations (any
answer that contradicts the model, and any NO/BAD the model does not allow), and exits
1 when there was a violation.

    tests/imap_stress.py --port 143 --user alice@example.test:secret \\
        --user bob@example.test:secret --clients 4 --ops 200 \\
        --deliver smtp:127.0.0.1:10026

The seed (`--seed`, or IMAP_STRESS_SEED) fixes every client's choices and the
deliveries; it is printed at the start and with any failure. Sessions run concurrently,
so the server's interleaving still varies from run to run; with `--serial` (or
IMAP_STRESS_SERIAL=1) only one command runs at a time, in an order the seed decides,
which replays a run exactly against a server that behaves the same.

How the model copes with concurrency (see `FlagHistory.allowed` and the allowances
marked "ALLOWANCE" below):
- Time is a logical clock ticked at every send and receipt. Each flag of each message
  keeps the history of writes (STORE, FETCH BODY[] setting \\Seen), each with the time
  its command was sent and the time its tagged response came back. A reported value is
  accepted if it is the initial value or the value of a write sent before the report,
  that the reporting session cannot already know to be superseded: superseded means a
  later write (sent after the first one's response) that completed before the session's
  previous command was sent (a server may answer from the view it synchronised during
  the previous command), or that this session made itself in an earlier command.
- Sequence numbers are tracked per session: EXISTS never shrinks, every EXPUNGE and
  FETCH names a number the session has, no EXPUNGE during FETCH, STORE or SEARCH
  (RFC 3501 §7.4.1), UIDs ascend with sequence numbers and a new message's UID is
  above every UID the session had seen when EXISTS announced it. A message the model cannot know the UID of yet
  (delivered mail) is accepted once per delivery.
- \\Recent (RFC 3501 §2.3.2): at most one read-write selection ever sees a message as
  recent; recent-ness never changes within a selection; a message appended or copied
  while no read-write selection of its mailbox existed (and delivered mail likewise,
  counted) must be recent for the next read-write SELECT.
- FLAGS/PERMANENTFLAGS: `\\*` in PERMANENTFLAGS of a read-write SELECT; a keyword in a
  FETCH must have been announced in the session's last FLAGS response; FLAGS at SELECT
  lists every keyword some message certainly has.
- ENVELOPE, BODYSTRUCTURE, BODY[] and RFC822.SIZE of a message are the same in every
  session and over time, for its copies too, and BODY[] of an APPENDed message is
  exactly what was appended.
- APPEND/COPY/MOVE: APPENDUID/COPYUID name fresh UIDs above every UID known before the
  command; a failed COPY/MOVE leaves nothing behind (RFC 3501 §6.4.7); every message a
  FETCH names is answered, every \\Deleted message an EXPUNGE covers is reported gone.

Allowances (each marked "ALLOWANCE" where it is applied):
- A server may answer from the view it synchronised during the session's previous
  command (RFC 3501 lets it report others' changes at the next command).
- A message another session may have expunged (RFC 2180 §4.1): FETCH may answer NO, or
  OK without it, or with its old data, or with NIL/empty data; STORE (§4.2) and COPY/
  MOVE (§4.4, RFC 6851) may answer NO. "May have expunged" means an EXPUNGE (with the
  message possibly \\Deleted) or MOVE naming it was sent and did not report it kept.
- UID SEARCH may be followed by EXPUNGE responses (RFC 3501 §7.4.1 forbids them only
  for FETCH, STORE and SEARCH by sequence number).
- STATUS of the selected mailbox may answer from the session's stale view (RFC 3501
  §6.3.10 says not to use it there); only UIDVALIDITY is checked.
- \\Recent may appear after a message was first reported without it in the same
  selection (Dovecot decides "first session" at its next sync); EXAMINE sessions may see
  \\Recent without taking it from others (RFC 3501 §2.3.2 ties it to read-write).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import smtplib
import sys
import time
import traceback
from collections import Counter

INF = float("inf")
SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
KEYWORDS = ["$Label1", "$Label2", "Junk", "NonJunk", "$Forwarded"]
ALL_FLAGS = SYSTEM_FLAGS + KEYWORDS
FLAG_CANON = {f.lower(): f for f in ALL_FLAGS}
MAILBOXES = ["INBOX", "Archive", "Trash"]
NOT_DURING = {"FETCH", "STORE", "SEARCH"}  # RFC 3501 §7.4.1: no EXPUNGE responses

# ---------------------------------------------------------------------------
# Logical clock
# ---------------------------------------------------------------------------

_clock = 0
_trace = None  # a file every command and response is written to (--trace)


def trace(text: str):
    if _trace is not None:
        _trace.write(f"@{_clock} {text}\n")


def tick() -> int:
    global _clock
    _clock += 1
    return _clock


# ---------------------------------------------------------------------------
# Wire format: reading and parsing responses
# ---------------------------------------------------------------------------

LITERAL_END = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Parser:
    """Parses IMAP response syntax: atoms (str), strings (bytes), NIL (None), lists.
    Literals were cut out of the line and stand as \\x00<index>\\x00."""

    def __init__(self, buf: bytes, lits: list[bytes], pos: int = 0):
        self.buf, self.lits, self.pos = buf, lits, pos

    def at_end(self) -> bool:
        self.skip_sp()
        return self.pos >= len(self.buf)

    def skip_sp(self):
        while self.pos < len(self.buf) and self.buf[self.pos] == 0x20:
            self.pos += 1

    def peek(self) -> int:
        return self.buf[self.pos] if self.pos < len(self.buf) else -1

    def value(self):
        self.skip_sp()
        c = self.peek()
        if c == ord("("):
            self.pos += 1
            items = []
            while True:
                self.skip_sp()
                if self.peek() == ord(")"):
                    self.pos += 1
                    return items
                if self.peek() == -1:
                    raise ValueError("unterminated list")
                items.append(self.value())
        if c == ord('"'):
            self.pos += 1
            out = bytearray()
            while True:
                ch = self.buf[self.pos]
                self.pos += 1
                if ch == ord("\\"):
                    out.append(self.buf[self.pos])
                    self.pos += 1
                elif ch == ord('"'):
                    return bytes(out)
                else:
                    out.append(ch)
        if c == 0:
            end = self.buf.index(b"\x00", self.pos + 1)
            index = int(self.buf[self.pos + 1 : end])
            self.pos = end + 1
            return self.lits[index]
        start, depth = self.pos, 0
        while self.pos < len(self.buf):
            ch = self.buf[self.pos]
            if ch == ord("["):
                depth += 1
            elif ch == ord("]"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch in b" ()":
                break
            self.pos += 1
        atom = self.buf[start : self.pos].decode("latin-1")
        if atom == "":
            raise ValueError(f"empty atom at {self.pos}")
        return None if atom.upper() == "NIL" else atom

    def word(self) -> str:
        self.skip_sp()
        start = self.pos
        while self.pos < len(self.buf) and self.buf[self.pos] not in b" [(":
            self.pos += 1
        return self.buf[start : self.pos].decode("latin-1")


class Resp:
    """One response: kind is tagged, untagged or cont."""

    def __init__(self, raw: bytes, lits: list[bytes]):
        self.raw, self.lits = raw, lits
        self.kind = "untagged"
        self.tag = self.status = self.code = self.name = None
        self.code_args: list = []
        self.text = ""
        self.num = None
        self.fetch: dict = {}
        self.data = None
        self.parse()

    def display(self) -> str:
        text = re.sub(
            rb"\x00(\d+)\x00",
            lambda m: b"{%d bytes}" % len(self.lits[int(m.group(1))]),
            self.raw,
        ).decode("latin-1")
        return text if len(text) <= 300 else text[:300] + "..."

    def parse(self):
        if self.raw.startswith(b"+"):
            self.kind = "cont"
            return
        sp = self.raw.find(b" ")
        tag = self.raw[:sp].decode("latin-1") if sp > 0 else self.raw.decode("latin-1")
        p = Parser(self.raw, self.lits, sp + 1 if sp > 0 else len(self.raw))
        if tag != "*":
            self.kind, self.tag = "tagged", tag
            self.status = p.word().upper()
            self.parse_status(p)
            return
        first = p.word()
        if first.isdigit():
            self.num = int(first)
            self.name = p.word().upper()
            if self.name == "FETCH":
                items = p.value()
                for i in range(0, len(items) - 1, 2):
                    self.fetch[str(items[i]).upper()] = items[i + 1]
            return
        self.name = first.upper()
        if self.name in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
            self.status = self.name
            self.parse_status(p)
        elif self.name == "FLAGS":
            self.data = p.value()
        elif self.name == "SEARCH":
            nums = []
            while not p.at_end():
                v = p.value()
                if isinstance(v, str) and v.isdigit():
                    nums.append(int(v))
            self.data = nums
        elif self.name == "STATUS":
            mailbox = p.value()
            items = p.value()
            self.data = (
                mailbox,
                {str(items[i]).upper(): items[i + 1] for i in range(0, len(items) - 1, 2)},
            )

    def parse_status(self, p: Parser):
        p.skip_sp()
        if p.peek() == ord("["):
            depth, end = 0, p.pos
            while end < len(p.buf):
                if p.buf[end] == ord("["):
                    depth += 1
                elif p.buf[end] == ord("]"):
                    depth -= 1
                    if depth == 0:
                        break
                end += 1
            inner = Parser(p.buf[p.pos + 1 : end], p.lits)
            self.code = inner.word().upper()
            while not inner.at_end():
                self.code_args.append(inner.value())
            p.pos = end + 1
        self.text = p.buf[p.pos :].decode("latin-1").strip()


def canon(value):
    """A hashable form of a parsed value (for ENVELOPE/BODYSTRUCTURE comparisons)."""
    if isinstance(value, list):
        return tuple(canon(v) for v in value)
    if isinstance(value, str):
        return value.upper()
    return value


def expand_set(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


def compress(nums) -> str:
    nums = sorted(set(nums))
    parts, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}:{nums[j]}")
        i = j + 1
    return ",".join(parts)


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


class Report:
    def __init__(self, label: str, seed: int, show: int):
        self.label, self.seed, self.show = label, seed, show
        self.ops = Counter()
        self.errors = Counter()  # tagged NO/BAD, by command and answer
        self.allowed = Counter()  # of those, the ones an allowance covers
        self.violations = Counter()
        self.examples: dict[str, list[str]] = {}  # kind -> the first few, in order
        self.deliveries = 0
        self.delivery_errors = Counter()
        self.sessions = 0
        self.elapsed = 0.0

    def violation(self, kind: str, session, cmd, expected: str, got: str = ""):
        self.violations[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) >= self.show:
            return
        session = getattr(cmd, "session", None) or session
        lines = [f"[{kind}] session {session.sid} ({session.user.name}"]
        if session.sel:
            lines[0] += f", {session.sel.mailbox.name}"
            lines[0] += " read-write" if session.sel.rw else " read-only"
        lines[0] += ")"
        if cmd is not None:
            lines.append(f"  command:  {cmd.tag} {cmd.text}")
            for r in cmd.lines[-8:]:
                lines.append(f"  response: {r}")
        if got:
            lines.append(f"  got:      {got}")
        lines.append(f"  expected: {expected}")
        examples.append("\n".join(lines))

    def error(self, cmd, allowed: bool):
        text = re.sub(r"\d+", "N", cmd.resp_text)[:60]
        key = f"{cmd.kind} {cmd.status}" + (f" [{cmd.code}]" if cmd.code else "") + f" {text}"
        self.errors[key] += 1
        if allowed:
            self.allowed[key] += 1

    def as_json(self) -> dict:
        return {
            "label": self.label,
            "seed": self.seed,
            "seconds": round(self.elapsed, 1),
            "sessions": self.sessions,
            "operations": sum(self.ops.values()),
            "ops": dict(self.ops),
            "errors": sum(self.errors.values()),
            "errors_allowed": sum(self.allowed.values()),
            "errors_by_kind": dict(self.errors),
            "violations": sum(self.violations.values()),
            "violations_by_kind": dict(self.violations),
            "deliveries": self.deliveries,
            "delivery_errors": dict(self.delivery_errors),
        }

    def render(self) -> str:
        out = [
            f"== imap_stress {self.label}: seed {self.seed}, {self.elapsed:.1f}s, "
            f"{self.sessions} sessions, {sum(self.ops.values())} operations, "
            f"{self.deliveries} deliveries"
        ]
        out.append("operations: " + ", ".join(f"{k} {v}" for k, v in sorted(self.ops.items())))
        total = sum(self.errors.values())
        out.append(
            f"errors (tagged NO/BAD): {total}, of which allowed by RFC 3501/2180: "
            f"{sum(self.allowed.values())}"
        )
        for key, n in self.errors.most_common():
            note = f" (allowed {self.allowed[key]})" if self.allowed[key] else ""
            out.append(f"  {n:6d}  {key}{note}")
        if self.delivery_errors:
            out.append("delivery errors:")
            for key, n in self.delivery_errors.most_common():
                out.append(f"  {n:6d}  {key}")
        out.append(f"violations: {sum(self.violations.values())}")
        for key, n in self.violations.most_common():
            out.append(f"  {n:6d}  {key}")
        if self.examples:
            out.append(f"first violations of each kind (up to {self.show}):")
            for examples in self.examples.values():
                out.extend(examples)
            out.append(f"replay with IMAP_STRESS_SEED={self.seed} (and IMAP_STRESS_SERIAL=1)")
        return "\n".join(out)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


class Write:
    __slots__ = ("value", "sent", "resp", "ok", "session", "cmd")

    def __init__(self, value: bool, sent: int, session, cmd: int):
        self.value, self.sent, self.session, self.cmd = value, sent, session, cmd
        self.resp = INF  # when its command's tagged response came back
        self.ok = False  # applied for sure (tagged OK); otherwise maybe


class FlagHistory:
    """One flag of one message: its initial value(s) and every write to it."""

    __slots__ = ("initial", "writes")

    def __init__(self, initial: set[bool]):
        self.initial = set(initial)
        self.writes: list[Write] = []

    def allowed(self, a: int, b: int, session, cmd: int, lenient: bool = False) -> set[bool]:
        """Values a report received at `b` may carry, in a command of `session` numbered
        `cmd` whose view the server may have synchronised as early as `a`."""
        if lenient:
            # ALLOWANCE (RFC 2180 §4.1.1): data of a message another session may have
            # expunged may be the data as it was: any value it ever had.
            return set(self.initial) | {w.value for w in self.writes if w.sent < b}
        latest_known = -1
        for w in self.writes:
            if w.ok and (w.resp < a or (w.session is session and w.cmd < cmd)):
                latest_known = max(latest_known, w.sent)
        values = set() if latest_known >= 0 else set(self.initial)
        for w in self.writes:
            if w.sent < b and not w.resp < latest_known:
                values.add(w.value)
        return values

    def pin(self, value: bool, b: int):
        """A report made before any write was sent shows the initial value."""
        if len(self.initial) > 1 and not any(w.sent < b for w in self.writes):
            self.initial = {value}


class Content:
    """What stays the same for a message and its copies."""

    __slots__ = ("envelope", "bodystructure", "body", "size")

    def __init__(self, body: bytes | None = None):
        self.envelope = self.bodystructure = self.size = None
        self.body = body


class Message:
    __slots__ = (
        "uid",
        "mailbox",
        "hist",
        "content",
        "created",
        "gone_possible_at",
        "gone_confirmed",
        "deleted_true_sent",
        "origin",
        "early",
    )

    def __init__(self, mailbox, uid: int, initial: dict, content: Content, created, origin):
        self.uid, self.mailbox, self.content = uid, mailbox, content
        self.hist = {f: FlagHistory(initial[f]) for f in ALL_FLAGS}
        self.created = created  # (sent, resp) of the command that made it
        self.gone_possible_at = INF  # earliest send of a command that may remove it
        self.gone_confirmed = INF  # when a session was told it is gone
        self.deleted_true_sent = -1 if True in initial["\\Deleted"] else INF
        self.origin = origin  # how the model learned of it
        # Reports about a placeholder ("pending": seen before the APPEND/COPY that made
        # it answered), checked once that answer says what it was created with.
        self.early: list[tuple] = []

    def possibly_gone(self, t: float) -> bool:
        """Whether a command sent before `t` may have removed it."""
        if self.gone_possible_at < t or self.gone_confirmed < t:
            return True
        for sent, scope, needs_deleted in self.mailbox.removals:
            if sent < t and (scope is None or self.uid in scope):
                if not needs_deleted or self.deleted_true_sent < INF:
                    return True
        return False


class Selection:
    """One SELECT/EXAMINE of a mailbox by a session, until the next one or LOGOUT."""

    _ids = 0

    def __init__(self, session, mailbox, rw: bool, sent: int):
        Selection._ids += 1
        self.id = Selection._ids
        self.session, self.mailbox, self.rw, self.sent = session, mailbox, rw, sent
        self.closed = INF
        self.view: list[int | None] = []
        self.flags: set[str] = set()  # as the last FLAGS response said
        self.recent: dict[int, tuple[bool, str]] = {}  # uid -> (recent, where seen)
        self.must_recent: set[int] = set()
        self.max_uid_ever = 0
        # Per slot of the view: the highest UID the session had seen when the slot
        # appeared (its message's UID must be higher); -1 for the SELECT's own slots.
        self.floors: list[int] = []
        self.uidnext = None


class Mailbox:
    def __init__(self, user, name: str):
        self.user, self.name = user, name
        self.uidvalidity = None
        self.msgs: dict[int, Message] = {}
        self.max_known_uid = 0
        self.uidnext_seen = 0
        self.selections: list[Selection] = []
        self.unknown_budget = 0  # deliveries not yet matched to a UID
        self.deliveries: list[tuple[int, float]] = []  # (sent, done)
        # EXPUNGE/MOVE commands in flight: (sent, UIDs or None for all, whether only
        # \Deleted messages go).
        self.removals: list[tuple[int, set | None, bool]] = []
        self.recent_owner: dict[int, Selection] = {}
        self.baseline = False  # reading what was there before the run
        self.failed_copy = None  # the last COPY/MOVE into it that answered NO
        self.pending = 0  # messages APPEND/COPY/MOVE in flight may create
        self.pending_uids: set[int] = set()  # seen before their creator's answer

    def add(self, msg: Message):
        self.msgs[msg.uid] = msg
        self.max_known_uid = max(self.max_known_uid, msg.uid)

    def rw_selection_between(self, start: float, before: int, exclude) -> bool:
        """Whether a read-write selection other than `exclude` existed at some time
        between `start` and `before` (sent before `before`, not closed before `start`)."""
        return any(
            s is not exclude and s.rw and s.sent < before and s.closed > start
            for s in self.selections
        )


class User:
    def __init__(self, name: str, password: str):
        self.name, self.password = name, password
        self.mailboxes = {n: Mailbox(self, n) for n in MAILBOXES}
        self.active = 0


# ---------------------------------------------------------------------------
# Commands and sessions
# ---------------------------------------------------------------------------


class Cmd:
    def __init__(self, tag: str, kind: str, text: str):
        self.tag, self.kind, self.text = tag, kind, text
        self.base = kind.split()[-1]  # FETCH for UID FETCH
        self.uid = kind.startswith("UID ")
        self.sent = self.resp = 0
        self.a = 0  # earliest time the server's view for this command may be from
        self.index = 0
        self.status = None
        self.code = None
        self.code_args: list = []
        self.resp_text = ""
        self.lines: list[str] = []
        self.untagged: list[Resp] = []
        self.fetched: dict[int, dict] = {}  # uid -> items, for this command
        self.writes: list[Write] = []
        self.expunged: list[int | None] = []  # UIDs this command's responses removed


class SessionLost(Exception):
    pass


class Session:
    _ids = 0

    def __init__(self, checker, client, user: User, rng: random.Random):
        Session._ids += 1
        self.sid = Session._ids
        self.checker, self.client, self.user, self.rng = checker, client, user, rng
        self.report: Report = checker.report
        self.reader = self.writer = None
        self.tagn = 0
        self.sel: Selection | None = None
        self.prev_sent = 0
        self.cmd_index = 0
        self.resync = False
        self.cmd: Cmd | None = None
        self.logging_out = False

    def v(self, kind, expected, got="", cmd=None):
        self.report.violation(kind, self, cmd if cmd is not None else self.cmd, expected, got)

    # -- wire --

    async def connect(self):
        self.reader, self.writer = await asyncio.open_connection(
            self.checker.host, self.checker.port, limit=8 << 20
        )
        greeting = await self.read()
        if not greeting.raw.startswith(b"* OK"):
            raise SessionLost(f"greeting {greeting.display()}")

    async def read(self) -> Resp:
        parts, lits = [], []
        try:
            while True:
                line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), self.checker.timeout)
                m = LITERAL_END.search(line)
                if m:
                    parts.append(line[: m.start()])
                    parts.append(b"\x00%d\x00" % len(lits))
                    lits.append(
                        await asyncio.wait_for(
                            self.reader.readexactly(int(m.group(1))), self.checker.timeout
                        )
                    )
                    continue
                parts.append(line[:-2])
                break
        except asyncio.TimeoutError:
            raise SessionLost("timeout")
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            raise SessionLost(f"connection lost: {e}")
        resp = Resp(b"".join(parts), lits)
        trace(f"s{self.sid} S: {resp.display()}")
        return resp

    def send(self, data: bytes):
        self.writer.write(data)

    async def command(self, kind: str, args: str, literal: bytes | None = None, pre=None) -> Cmd:
        if self.checker.lock is not None:
            async with self.checker.lock:
                return await self._command(kind, args, literal, pre)
        return await self._command(kind, args, literal, pre)

    async def _command(self, kind: str, args: str, literal: bytes | None, pre) -> Cmd:
        self.tagn += 1
        tag = f"s{self.sid}.{self.tagn}"
        text = f"{kind} {args}".strip()
        cmd = Cmd(tag, kind, text)
        cmd.session = self
        self.cmd = cmd
        self.cmd_index += 1
        cmd.index = self.cmd_index
        # ALLOWANCE: the server may answer from the view it synchronised while running
        # this session's previous command.
        cmd.a = self.prev_sent
        cmd.sent = tick()
        self.prev_sent = cmd.sent
        self.report.ops[kind] += 1
        trace(f"s{self.sid} C: {tag} {text}" + (f" {{{len(literal)}}}" if literal is not None else ""))
        if pre is not None:
            pre(cmd)
        if literal is not None:
            self.send(f"{tag} {text} {{{len(literal)}}}\r\n".encode())
            await self.writer.drain()
            while True:
                r = await self.read()
                if r.kind == "cont":
                    break
                cmd.lines.append(r.display())
                if r.kind == "tagged":
                    return self.finish(cmd, r)
                self.untagged(r, cmd)
            self.send(literal + b"\r\n")
        else:
            self.send(f"{tag} {text}\r\n".encode())
        await self.writer.drain()
        while True:
            r = await self.read()
            cmd.lines.append(r.display())
            if r.kind == "cont":
                if kind != "IDLE":
                    self.v("protocol", "no continuation request", r.display(), cmd)
                    continue
                ended = await self.idle_wait(cmd)
                if ended is not None:
                    if ended.tag != tag:
                        self.v("protocol", f"tagged response for {tag}", ended.display(), cmd)
                    return self.finish(cmd, ended)
                continue
            if r.kind == "tagged":
                if r.tag != tag:
                    self.v("protocol", f"tagged response for {tag}", r.display(), cmd)
                    continue
                return self.finish(cmd, r)
            self.untagged(r, cmd)

    def finish(self, cmd: Cmd, r: Resp) -> Cmd:
        cmd.resp = tick()
        cmd.status, cmd.code, cmd.code_args, cmd.resp_text = r.status, r.code, r.code_args, r.text
        for w in cmd.writes:
            w.resp = cmd.resp
            w.ok = cmd.status == "OK"
        return cmd

    # -- model updates at send --

    def add_write(self, cmd: Cmd, msg: Message, flag: str, value: bool):
        w = Write(value, cmd.sent, self, cmd.index)
        msg.hist[flag].writes.append(w)
        cmd.writes.append(w)
        if flag == "\\Deleted" and value:
            msg.deleted_true_sent = min(msg.deleted_true_sent, cmd.sent)

    def removal_done(self, entry, cmd: Cmd, sel: Selection):
        """An EXPUNGE or MOVE answered. Its response reported every message it removed
        from this session's view (RFC 3501 §7.4.1), so what is still there stayed; a
        message the session did not have (it arrived meanwhile) may be gone, if it is in
        scope (and, for EXPUNGE, may have had \\Deleted)."""
        sent, scope, needs_deleted = entry
        mb = sel.mailbox
        mb.removals.remove(entry)
        # After a NO the command may have done part of its work without reporting it.
        intact = self.sel is sel and not self.resync and cmd.status == "OK"
        in_view = set(sel.view) if intact else set()
        for msg in mb.msgs.values():
            if scope is not None and msg.uid not in scope:
                continue
            if msg.uid in in_view or msg.gone_confirmed < INF:
                continue
            if needs_deleted and (
                msg.deleted_true_sent == INF
                or True not in msg.hist["\\Deleted"].allowed(cmd.a, cmd.resp, self, cmd.index)
            ):
                continue
            msg.gone_possible_at = min(msg.gone_possible_at, sent)

    # -- untagged responses --

    def untagged(self, r: Resp, cmd: Cmd):
        cmd.untagged.append(r)
        sel = self.sel
        if r.name == "BYE":
            if not self.logging_out:
                self.v("unexpected-bye", "no BYE outside LOGOUT", r.display(), cmd)
            return
        if r.name in ("NO", "BAD") and r.status:
            self.report.errors[f"untagged {r.name} {r.text[:50]}"] += 1
            return
        if sel is None or self.resync:
            return
        if r.name == "EXISTS":
            if r.num < len(sel.view):
                self.v(
                    "exists-shrank",
                    f"EXISTS >= {len(sel.view)} (the session's count; only EXPUNGE lowers it)",
                    r.display(),
                    cmd,
                )
                self.resync = True
                return
            floor = -1 if cmd.base in ("SELECT", "EXAMINE") else sel.max_uid_ever
            sel.floors.extend([floor] * (r.num - len(sel.view)))
            sel.view.extend([None] * (r.num - len(sel.view)))
        elif r.name == "EXPUNGE":
            if cmd.base in NOT_DURING and not cmd.uid:
                self.v("expunge-during-" + cmd.base.lower(), "no EXPUNGE during FETCH, STORE or SEARCH (RFC 3501 §7.4.1)", r.display(), cmd)
            if not 1 <= r.num <= len(sel.view):
                self.v("expunge-bad-seq", f"EXPUNGE of 1..{len(sel.view)}", r.display(), cmd)
                self.resync = True
                return
            uid = sel.view.pop(r.num - 1)
            sel.floors.pop(r.num - 1)
            cmd.expunged.append(uid)
            if uid is not None:
                msg = sel.mailbox.msgs.get(uid)
                now = tick()
                if msg is not None:
                    if not msg.possibly_gone(now):
                        self.v(
                            "expunge-unexpected",
                            f"UID {uid} removed only after \\Deleted + EXPUNGE or MOVE",
                            r.display(),
                            cmd,
                        )
                    msg.gone_confirmed = min(msg.gone_confirmed, now)
        elif r.name == "RECENT":
            if r.num > len(sel.view):
                self.v("recent-count", f"RECENT <= EXISTS ({len(sel.view)})", r.display(), cmd)
        elif r.name == "FETCH":
            self.on_fetch(r, cmd)
        elif r.name == "FLAGS":
            flags = {str(f) for f in r.data}
            sel.flags = {FLAG_CANON.get(f.lower(), f) for f in flags}

    def on_fetch(self, r: Resp, cmd: Cmd):
        sel = self.sel
        b = tick()
        if not 1 <= r.num <= len(sel.view):
            self.v("fetch-bad-seq", f"FETCH for a message 1..{len(sel.view)}", r.display(), cmd)
            return
        i = r.num - 1
        uid = sel.view[i]
        if "UID" in r.fetch:
            got = int(r.fetch["UID"])
            if uid is None:
                uid = self.learn(i, got, cmd, r)
                if uid is None:
                    return
            elif uid != got:
                self.v("uid-mismatch", f"message {r.num} has UID {uid}", r.display(), cmd)
                self.resync = True
                return
        if uid is None:
            return
        mb = sel.mailbox
        msg = mb.msgs.get(uid)
        if msg is None:
            return
        cmd.fetched.setdefault(uid, {}).update(r.fetch)
        if "FLAGS" in r.fetch:
            self.check_flags(msg, [str(f) for f in r.fetch["FLAGS"]], cmd, b, r)
        self.check_content(msg, r, cmd)

    def learn(self, i: int, uid: int, cmd: Cmd, r: Resp):
        """A UID for a slot of the view: ascending, not reused, known or delivered."""
        sel, mb = self.sel, self.sel.mailbox
        before = [u for u in sel.view[:i] if u is not None]
        after = [u for u in sel.view[i + 1 :] if u is not None]
        if (before and before[-1] >= uid) or (after and after[0] <= uid):
            self.v("uid-order", "UIDs ascend with sequence numbers", r.display(), cmd)
            self.resync = True
            return None
        if uid <= sel.floors[i]:
            self.v(
                "uid-not-ascending",
                f"a new message's UID above every UID this session had seen when EXISTS "
                f"announced it ({sel.floors[i]})",
                r.display(),
                cmd,
            )
        if sel.floors[i] < 0 and sel.uidnext is not None and uid >= sel.uidnext:
            self.v("uidnext", f"UIDs listed at SELECT below UIDNEXT {sel.uidnext}", r.display(), cmd)
        sel.view[i] = uid
        sel.max_uid_ever = max(sel.max_uid_ever, uid)
        msg = mb.msgs.get(uid)
        if msg is not None:
            if msg.gone_confirmed < sel.sent:
                self.v("uid-reused", f"UID {uid} was expunged before this SELECT", r.display(), cmd)
            return uid
        if mb.pending > 0:
            # Perhaps an APPEND/COPY/MOVE in flight made it: its answer will tell.
            initial = {f: {False, True} for f in ALL_FLAGS}
            origin = "pending"
            mb.pending_uids.add(uid)
        elif mb.baseline:
            # Already there before the run: its flags are what this first FETCH says.
            initial = {f: {False, True} for f in ALL_FLAGS}
            origin = "seeded"
        elif mb.unknown_budget > 0:
            mb.unknown_budget -= 1
            initial = {f: {False} for f in ALL_FLAGS}
            origin = "delivered"
        elif mb.failed_copy is not None:
            failed = mb.failed_copy
            self.v(
                "copy-not-atomic",
                f"nothing copied to {mb.name} by {failed.tag} {failed.text}, which answered "
                f"{failed.status} {failed.resp_text} (RFC 3501 §6.4.7: the server MUST restore "
                "the destination mailbox)",
                f"UID {uid} in {r.display()}",
                cmd,
            )
            initial = {f: {False, True} for f in ALL_FLAGS}
            origin = "unexplained"
        else:
            self.v(
                "unexpected-message",
                "only messages the model knows (seeded, delivered, appended, copied)",
                f"UID {uid}",
                cmd,
            )
            initial = {f: {False, True} for f in ALL_FLAGS}
            origin = "unexplained"
        # It existed when this session learned of it; earlier is not known.
        created = (0, 0) if origin == "seeded" else (cmd.sent, cmd.sent)
        mb.add(Message(mb, uid, initial, Content(), created, origin))
        return uid

    def check_flags(self, msg: Message, flags: list[str], cmd: Cmd, b: int, r: Resp):
        sel = self.sel
        reported = set()
        recent = False
        for f in flags:
            if f.lower() == "\\recent":
                recent = True
                continue
            canon_f = FLAG_CANON.get(f.lower())
            if canon_f is None:
                self.v("unknown-flag", f"flags among {ALL_FLAGS}", f, cmd)
                continue
            reported.add(canon_f)
            if canon_f in KEYWORDS and canon_f not in sel.flags:
                self.v(
                    "keyword-not-in-FLAGS",
                    f"keyword {canon_f} announced in a FLAGS response first "
                    f"(session's FLAGS: {' '.join(sorted(sel.flags)) or '-'})",
                    r.display(),
                    cmd,
                )
        self.observe_recent(msg.uid, recent, cmd, r)
        if msg.origin == "pending":
            msg.early.append((reported, cmd, b, r))
            return
        lenient = msg.possibly_gone(b)
        for f in ALL_FLAGS:
            value = f in reported
            hist = msg.hist[f]
            allowed = hist.allowed(cmd.a, b, self, cmd.index, lenient)
            if value not in allowed:
                kind = "flags"
                if cmd.a < msg.created[1] and msg.origin in ("appended", "copied"):
                    # Seen while the APPEND/COPY that made it was still running: the
                    # message was visible before its flags were.
                    kind = "flags-of-a-message-being-created"
                self.v(
                    kind,
                    f"UID {msg.uid} {f} {'/'.join(str(x) for x in sorted(allowed)) or 'nothing'} "
                    f"(writes: {self.describe_writes(hist)})",
                    f"{f}={value} in {r.display()}",
                    cmd,
                )
            else:
                hist.pin(value, b)

    def describe_writes(self, hist: FlagHistory) -> str:
        parts = [f"initial {'/'.join(str(v) for v in sorted(hist.initial))}"]
        for w in hist.writes[-6:]:
            who = "this session" if w.session is self else f"session {w.session.sid}"
            resp = "pending" if w.resp == INF else w.resp
            parts.append(f"{w.value} by {who} sent@{w.sent} done@{resp}{'' if w.ok else '?'}")
        parts.append(f"now@{_clock}, view from @{self.cmd.a if self.cmd else 0}")
        return "; ".join(parts)

    def observe_recent(self, uid: int, recent: bool, cmd: Cmd, r):
        sel = self.sel
        before = sel.recent.get(uid)
        display = r.display() if isinstance(r, Resp) else str(r)
        # ALLOWANCE: a message first reported without \Recent may show it later in the
        # same selection: Dovecot 2.3 decides which session is "first to be notified"
        # (RFC 3501 §2.3.2) at its next mailbox sync, after it may already have sent
        # the message's flags. Recent-ness never goes away within a selection, and at
        # most one read-write selection gets it.
        if before is not None and before[0] and not recent:
            self.v(
                "recent-changed",
                f"\\Recent of UID {uid} {before[0]} for the whole selection (as {before[1]})",
                display,
                cmd,
            )
        sel.recent[uid] = (recent, f"{cmd.tag} {cmd.text[:40]}: {display[:80]}")
        # ALLOWANCE: an EXAMINE session may see \\Recent without taking it (RFC 3501
        # §2.3.2: "if the session is read-write, subsequent sessions will not see").
        if recent and sel.rw:
            owner = sel.mailbox.recent_owner.get(uid)
            if owner is not None and owner is not sel:
                self.v(
                    "recent-twice",
                    f"UID {uid} recent in one session only (session {owner.session.sid} saw it)",
                    display,
                    cmd,
                )
            sel.mailbox.recent_owner.setdefault(uid, sel)
        if not recent and uid in sel.must_recent:
            self.v(
                "recent-missing",
                f"UID {uid} \\Recent: it was added while no session had the mailbox selected",
                display,
                cmd,
            )

    def check_content(self, msg: Message, r: Resp, cmd: Cmd):
        c = msg.content
        if msg.possibly_gone(_clock):
            # ALLOWANCE (RFC 2180 §4.1.3): for a message another session expunged the
            # server may send NIL or empty data (Dovecot: RFC822.SIZE 0 BODY[] NIL).
            return
        for key, attr in (("ENVELOPE", "envelope"), ("BODYSTRUCTURE", "bodystructure")):
            if key in r.fetch:
                value = canon(r.fetch[key])
                old = getattr(c, attr)
                if old is None:
                    setattr(c, attr, value)
                elif old != value:
                    self.v(key.lower() + "-changed", f"UID {msg.uid} {key} as first seen: {old}", str(value)[:300], cmd)
        body = r.fetch.get("BODY[]")
        if body is not None:
            if not isinstance(body, bytes):
                self.v("body", "BODY[] as a string", str(body), cmd)
            elif c.body is None:
                c.body = body
            elif c.body != body:
                self.v(
                    "body-changed",
                    f"UID {msg.uid} BODY[] as first seen or appended ({len(c.body)} bytes)",
                    f"{len(body)} bytes: {body[:120]!r}",
                    cmd,
                )
        if "RFC822.SIZE" in r.fetch:
            size = int(r.fetch["RFC822.SIZE"])
            if c.size is None:
                c.size = size
            elif c.size != size:
                self.v("size-changed", f"UID {msg.uid} RFC822.SIZE {c.size}", str(size), cmd)
        if c.size is not None and c.body is not None and c.size != len(c.body):
            self.v("size-mismatch", f"UID {msg.uid} RFC822.SIZE = length of BODY[] ({len(c.body)})", str(c.size), cmd)
            c.size = len(c.body)

    async def idle_wait(self, cmd: Cmd):
        """IDLE: take what comes for a moment, then DONE. Returns the tagged response
        if it came while waiting (the server may end IDLE itself)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.rng.uniform(*self.checker.idle_seconds)
        done_sent = False
        while True:
            task = asyncio.ensure_future(self.read())
            if not done_sent:
                finished, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
                if not finished:
                    self.send(b"DONE\r\n")
                    await self.writer.drain()
                    done_sent = True
            r = await task
            cmd.lines.append(r.display())
            if r.kind == "tagged":
                return r
            self.untagged(r, cmd)
            if done_sent:
                # Anything after DONE belongs to the IDLE command too: keep reading in
                # the caller's loop.
                return None

    # -- tagged answers --

    def answered(self, cmd: Cmd, allow_no: bool = False, why: str = "") -> bool:
        """True for OK. A NO is counted as an error, and is a violation unless an
        allowance covers it (`allow_no`); a BAD always is (the workload sends only valid
        commands)."""
        if cmd.status == "OK":
            return True
        allowed = cmd.status == "NO" and allow_no
        self.report.error(cmd, allowed)
        if not allowed:
            self.v(
                f"{cmd.status} to {cmd.kind}",
                why or "OK (no allowance covers a NO here)",
                f"{cmd.status} [{cmd.code or ''}] {cmd.resp_text}",
                cmd,
            )
        return False

    def targets_gone(self, uids, t) -> bool:
        mb = self.sel.mailbox
        return any(mb.msgs[u].possibly_gone(t) for u in uids if u in mb.msgs)

    def close_selection(self, t: float):
        if self.sel is not None:
            self.sel.closed = min(self.sel.closed, t)
            self.sel = None

    # -- operations --

    async def login(self):
        await self.connect()
        cmd = await self.command("LOGIN", f"{quote(self.user.name)} {quote(self.user.password)}")
        if cmd.status != "OK":
            self.answered(cmd)
            raise SessionLost(f"login: {cmd.status} {cmd.resp_text}")

    async def logout(self):
        self.logging_out = True
        cmd = await self.command("LOGOUT", "")
        self.close_selection(cmd.resp)
        self.answered(cmd)

    async def select(self, name: str, rw: bool, baseline: bool = False):
        mb = self.user.mailboxes[name]
        old = self.sel
        sel = Selection(self, mb, rw, 0)
        floor_uid, floor_next = mb.max_known_uid, mb.uidnext_seen
        must_delivered = 0

        def pre(cmd):
            sel.sent = cmd.sent
            mb.selections.append(sel)

        self.sel = sel
        self.resync = False
        cmd = await self.command("SELECT" if rw else "EXAMINE", quote(name), pre=pre)
        if rw and not baseline:
            # A message added while no read-write selection of the mailbox existed is
            # recent for the next one (RFC 3501 §2.3.2: "first session to be notified").
            # Any other read-write SELECT sent before this one's answer may have come
            # first, so it counts as existing.
            for msg in mb.msgs.values():
                if (
                    msg.origin in ("appended", "copied")
                    and msg.created[1] < cmd.sent
                    and not msg.possibly_gone(cmd.resp)
                    and not mb.rw_selection_between(msg.created[0], cmd.resp, sel)
                ):
                    sel.must_recent.add(msg.uid)
            for sent, done in mb.deliveries:
                if done < cmd.sent and not mb.rw_selection_between(sent, cmd.resp, sel):
                    must_delivered += 1
        if old is not None:
            old.closed = min(old.closed, cmd.resp)
        if not self.answered(cmd):
            self.close_selection(cmd.resp)
            return
        codes = {r.code: r.code_args for r in cmd.untagged if r.status == "OK" and r.code}
        recent = [r.num for r in cmd.untagged if r.name == "RECENT"]
        if "UIDVALIDITY" in codes:
            self.check_uidvalidity(mb, int(codes["UIDVALIDITY"][0]), cmd)
        else:
            self.v("select-uidvalidity", "an OK [UIDVALIDITY] response", "none", cmd)
        if "UIDNEXT" in codes:
            uidnext = int(codes["UIDNEXT"][0])
            sel.uidnext = uidnext
            self.check_uidnext(mb, uidnext, floor_uid, floor_next, cmd)
        expect_code = "READ-WRITE" if rw else "READ-ONLY"
        if cmd.code != expect_code:
            self.v("select-access", f"[{expect_code}]", f"[{cmd.code}]", cmd)
        permanent = {str(f) for f in codes.get("PERMANENTFLAGS", [[]])[0] or []}
        if rw and "\\*" not in permanent:
            self.v("permanentflags", "PERMANENTFLAGS with \\* (keywords can be created)", " ".join(sorted(permanent)), cmd)
        if not recent:
            self.v("select-recent", "an n RECENT response", "none", cmd)
        elif rw and not baseline:
            need = len(sel.must_recent) + must_delivered
            if recent[-1] < need:
                self.v(
                    "recent-missing",
                    f"RECENT >= {need}: {len(sel.must_recent)} appended/copied and "
                    f"{must_delivered} delivered while no session had it selected",
                    f"{recent[-1]} RECENT",
                    cmd,
                )
        if not baseline:
            for msg in mb.msgs.values():
                if msg.created[1] >= cmd.sent or msg.possibly_gone(cmd.resp):
                    continue
                for k in KEYWORDS:
                    if k not in sel.flags and msg.hist[k].allowed(cmd.sent, cmd.resp, self, cmd.index) == {True}:
                        self.v(
                            "keyword-not-in-FLAGS",
                            f"FLAGS lists {k}: UID {msg.uid} has it",
                            " ".join(sorted(sel.flags)),
                            cmd,
                        )
                        break
        await self.sync_view(complete_check=not baseline)

    def check_uidvalidity(self, mb: Mailbox, value: int, cmd: Cmd):
        if mb.uidvalidity is None:
            mb.uidvalidity = value
        elif mb.uidvalidity != value:
            self.v("uidvalidity-changed", f"UIDVALIDITY {mb.uidvalidity} of {mb.name}", str(value), cmd)

    def check_uidnext(self, mb: Mailbox, uidnext: int, floor_uid: int, floor_next: int, cmd: Cmd):
        if uidnext <= floor_uid or uidnext < floor_next:
            self.v(
                "uidnext",
                f"UIDNEXT of {mb.name} above every UID known before the command ({floor_uid}) "
                f"and not below one reported before ({floor_next})",
                str(uidnext),
                cmd,
            )
        mb.uidnext_seen = max(mb.uidnext_seen, uidnext)

    async def sync_view(self, complete_check: bool = False):
        """What a client does after SELECT or EXISTS: learn the UIDs and flags of the
        messages it has no UID for."""
        sel = self.sel
        unknown = [i for i, u in enumerate(sel.view) if u is None]
        if unknown:
            cmd = await self.command("FETCH", f"{unknown[0] + 1}:* (UID FLAGS)")
            self.answered(cmd, allow_no=self.targets_gone(sel.view, cmd.resp), why="OK (RFC 2180 §4.1.2 allows NO only for expunged messages)")
        if complete_check and self.sel is sel and not self.resync:
            mb = sel.mailbox
            have = set(sel.view)
            t = self.cmd.resp
            for msg in mb.msgs.values():
                if msg.uid not in have and msg.created[1] < sel.sent and not msg.possibly_gone(t) and msg.origin != "pending":
                    self.v(
                        "select-missing",
                        f"UID {msg.uid} ({msg.origin}) in {mb.name}: nobody removed it",
                        f"view {compress(u for u in sel.view if u)}",
                        self.cmd,
                    )

    def known_slots(self) -> list[int]:
        """Sequence numbers (0-based) of messages with a UID the model knows."""
        mb = self.sel.mailbox
        return [i for i, u in enumerate(self.sel.view) if u is not None and u in mb.msgs]

    def choose_targets(self, uid: bool) -> tuple[str, list[int]] | None:
        """A message set (sequence numbers or UIDs) and the UIDs it names."""
        slots = self.known_slots()
        view = self.sel.view
        if not slots or len(slots) != len(view):
            return None
        rng = self.rng
        shape = rng.random()
        if shape < 0.1:
            chosen = slots
            text = "1:*"
        elif shape < 0.55:
            chosen = [rng.choice(slots)]
            text = None
        else:
            a = rng.choice(slots)
            b = min(len(view) - 1, a + rng.randint(1, 4))
            chosen = list(range(a, b + 1))
            text = None
        uids = [view[i] for i in chosen]
        if text is None:
            text = compress(uids) if uid else compress(i + 1 for i in chosen)
        elif uid:
            text = "1:*"
        if uid and rng.random() < 0.1:
            # A UID that is not there (expunged or never used) is ignored (RFC 3501 §6.4.8).
            gone = [u for u, m in self.sel.mailbox.msgs.items() if m.gone_confirmed < INF and u not in view]
            if gone:
                text += "," + str(rng.choice(gone))
        return text, uids

    async def op_fetch(self):
        rng = self.rng
        uid = rng.random() < 0.4
        chosen = self.choose_targets(uid)
        if chosen is None:
            return await self.op_noop()
        text, uids = chosen
        pool = ["FLAGS", "ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[]", "BODY[]", "RFC822.SIZE", "INTERNALDATE"]
        items = ["UID"] + rng.sample(pool, rng.randint(1, 3))
        sets_seen = "BODY[]" in items and self.sel.rw
        mb = self.sel.mailbox

        def pre(cmd):
            if sets_seen:
                # RFC 3501 §6.4.5: BODY[] sets \Seen.
                for u in uids:
                    self.add_write(cmd, mb.msgs[u], "\\Seen", True)

        cmd = await self.command("UID FETCH" if uid else "FETCH", f"{text} ({' '.join(items)})", pre=pre)
        # ALLOWANCE (RFC 2180 §4.1.2): a FETCH naming a message another session expunged
        # may answer NO; (§4.1.1/§4.1.3) or answer OK without data for it.
        gone = self.targets_gone(uids, cmd.resp)
        if self.answered(cmd, allow_no=gone, why="OK (NO only when a message named was expunged)"):
            for u in uids:
                if u not in cmd.fetched and not mb.msgs[u].possibly_gone(cmd.resp):
                    self.v("fetch-missing", f"a FETCH response for UID {u}", "none", cmd)

    async def op_store(self, uid: bool):
        rng = self.rng
        chosen = self.choose_targets(uid)
        if chosen is None:
            return await self.op_noop()
        text, uids = chosen
        mode = rng.choices(["+FLAGS", "-FLAGS", "FLAGS"], [5, 3, 2])[0]
        weights = [6, 2, 4, 2, 2, 3, 2, 2, 2, 2]
        n = rng.randint(1, 3)
        flags = set()
        while len(flags) < n:
            flags.add(rng.choices(ALL_FLAGS, weights)[0])
        if mode == "+FLAGS" and "\\Deleted" in flags and rng.random() < 0.5:
            flags.discard("\\Deleted")  # fewer deletions than other changes
        flags = sorted(flags)
        silent = ".SILENT" if rng.random() < 0.3 else ""
        mb = self.sel.mailbox

        def pre(cmd):
            for u in uids:
                msg = mb.msgs[u]
                if mode == "FLAGS":
                    for f in ALL_FLAGS:
                        self.add_write(cmd, msg, f, f in flags)
                else:
                    for f in flags:
                        self.add_write(cmd, msg, f, mode == "+FLAGS")

        cmd = await self.command(
            "UID STORE" if uid else "STORE", f"{text} {mode}{silent} ({' '.join(flags)})", pre=pre
        )
        # ALLOWANCE (RFC 2180 §4.2.1): a STORE to a message another session expunged may
        # answer NO (or OK and do nothing).
        self.answered(cmd, allow_no=self.targets_gone(uids, cmd.resp), why="OK (NO only when a message named was expunged)")

    async def op_expunge(self, uid: bool):
        sel, mb = self.sel, self.sel.mailbox
        scope = None
        args = ""
        if uid:
            chosen = self.choose_targets(True)
            if chosen is None:
                return await self.op_noop()
            args, uids = chosen
            scope = set(uids)
        entry = None

        def pre(cmd):
            nonlocal entry
            entry = (cmd.sent, scope, True)
            mb.removals.append(entry)

        cmd = await self.command("UID EXPUNGE" if uid else "EXPUNGE", args, pre=pre)
        self.removal_done(entry, cmd, sel)
        if not self.answered(cmd) or self.sel is not sel or self.resync:
            return
        for u in sel.view:
            if u is None or u not in mb.msgs or (scope is not None and u not in scope):
                continue
            if mb.msgs[u].hist["\\Deleted"].allowed(cmd.a, cmd.resp, self, cmd.index) == {True}:
                self.v("expunge-missed", f"UID {u} has \\Deleted: EXPUNGE removes it", "no EXPUNGE response", cmd)

    def claim(self, mb: Mailbox, uid: int, floor: int, initial: dict, content: Content, cmd: Cmd, origin: str):
        """A message the server says it created (APPENDUID/COPYUID)."""
        if uid <= floor:
            self.v("uid-not-ascending", f"a new UID in {mb.name} above {floor}, the highest known before", str(uid), cmd)
        old = mb.msgs.get(uid)
        if old is not None and old.origin != "pending":
            self.v("uid-reused", f"a new UID in {mb.name}; {uid} is {old.origin}", str(uid), cmd)
        msg = Message(mb, uid, initial, content, (cmd.sent, cmd.resp), origin)
        if old is not None:
            # Sessions saw it before this command's answer came: keep their writes.
            for f in ALL_FLAGS:
                msg.hist[f].writes = old.hist[f].writes
            msg.gone_possible_at, msg.gone_confirmed = old.gone_possible_at, old.gone_confirmed
            msg.deleted_true_sent = min(msg.deleted_true_sent, old.deleted_true_sent)
            for attr in ("envelope", "bodystructure", "body", "size"):
                theirs, ours = getattr(old.content, attr), getattr(content, attr)
                if theirs is not None and ours is not None and canon(theirs) != canon(ours):
                    self.v(attr + "-changed", f"UID {uid} {attr} as created", str(theirs)[:200], cmd)
                elif ours is None:
                    setattr(content, attr, theirs)
        mb.add(msg)
        mb.pending_uids.discard(uid)
        if old is not None:
            for reported, early_cmd, b, r in old.early:
                for f in ALL_FLAGS:
                    allowed = msg.hist[f].allowed(early_cmd.a, b, early_cmd.session, early_cmd.index)
                    if (f in reported) not in allowed:
                        self.v(
                            "flags-of-a-message-being-created",
                            f"UID {uid} {f} {'/'.join(str(x) for x in sorted(allowed))} as "
                            f"{cmd.tag} {cmd.kind} created it (another session saw it first)",
                            f"{f}={f in reported} in {r.display()}",
                            early_cmd,
                        )

    def settle(self, mb: Mailbox, cmd: Cmd):
        """After a creating command: placeholders nobody claimed are deliveries, or
        messages that should not exist."""
        if mb.pending > 0:
            return
        for uid in sorted(mb.pending_uids):
            msg = mb.msgs[uid]
            if mb.unknown_budget > 0:
                mb.unknown_budget -= 1
                msg.origin = "delivered"
            elif cmd.base in ("COPY", "MOVE") and cmd.status != "OK":
                msg.origin = "unexplained"
                self.v(
                    "copy-not-atomic",
                    f"nothing copied to {mb.name} by a {cmd.kind} that failed (RFC 3501 §6.4.7: "
                    "the server MUST restore the destination mailbox)",
                    f"UID {uid}",
                    cmd,
                )
            else:
                msg.origin = "unexplained"
                self.v("unexpected-message", f"no message in {mb.name} but those APPEND/COPY/delivery made", f"UID {uid}", cmd)
        mb.pending_uids.clear()

    async def op_append(self):
        rng = self.rng
        name = rng.choice(MAILBOXES)
        mb = self.user.mailboxes[name]
        flags = sorted(set(rng.choices(ALL_FLAGS, k=rng.randint(0, 3))))
        body = make_message(rng, f"a{self.sid}.{self.tagn + 1}.{rng.randrange(1 << 30)}")
        floor = 0

        def pre(cmd):
            nonlocal floor
            floor = mb.max_known_uid
            mb.pending += 1

        cmd = await self.command("APPEND", f"{quote(name)} ({' '.join(flags)})", literal=body, pre=pre)
        mb.pending -= 1
        if self.answered(cmd):
            if cmd.code != "APPENDUID" or len(cmd.code_args) != 2:
                self.v("appenduid", "OK [APPENDUID uidvalidity uid] (UIDPLUS)", cmd.resp_text, cmd)
            else:
                self.check_uidvalidity(mb, int(cmd.code_args[0]), cmd)
                initial = {f: {f in flags} for f in ALL_FLAGS}
                self.claim(mb, int(cmd.code_args[1]), floor, initial, Content(body), cmd, "appended")
        self.settle(mb, cmd)

    async def op_copy(self, uid: bool, move: bool):
        rng = self.rng
        sel, src = self.sel, self.sel.mailbox
        chosen = self.choose_targets(uid)
        if chosen is None:
            return await self.op_noop()
        text, uids = chosen
        names = [n for n in MAILBOXES if n != src.name] if move else MAILBOXES
        dst = self.user.mailboxes[rng.choice(names)]
        floor = 0
        entry = None

        def pre(cmd):
            nonlocal floor, entry
            floor = dst.max_known_uid
            dst.pending += len(uids)
            if move:
                entry = (cmd.sent, set(uids), False)
                src.removals.append(entry)

        kind = ("UID " if uid else "") + ("MOVE" if move else "COPY")
        cmd = await self.command(kind, f"{text} {quote(dst.name)}", pre=pre)
        dst.pending -= len(uids)
        if cmd.status != "OK":
            dst.failed_copy = cmd
        if move:
            self.removal_done(entry, cmd, sel)
        # ALLOWANCE (RFC 2180 §4.4.1, RFC 6851 §3.3): COPY/MOVE naming a message another
        # session expunged may answer NO, copying nothing.
        ok = self.answered(cmd, allow_no=self.targets_gone(uids, cmd.resp), why="OK (NO only when a message named was expunged)")
        if ok:
            code = None
            if cmd.code == "COPYUID":
                code = cmd.code_args
            for r in cmd.untagged:
                if r.status == "OK" and r.code == "COPYUID":
                    code = r.code_args
            if code is None or len(code) != 3:
                if not self.targets_gone(uids, cmd.resp):
                    self.v("copyuid", "[COPYUID uidvalidity source destination] (UIDPLUS)", cmd.resp_text, cmd)
            else:
                self.check_uidvalidity(dst, int(code[0]), cmd)
                sources, dests = expand_set(str(code[1])), expand_set(str(code[2]))
                if len(sources) != len(dests):
                    self.v("copyuid", "as many source as destination UIDs", str(code), cmd)
                for s, d in zip(sources, dests):
                    if s not in uids:
                        self.v("copyuid", f"source UIDs among those named ({compress(uids)})", str(s), cmd)
                        continue
                    msg = src.msgs[s]
                    initial = {}
                    for f in ALL_FLAGS:
                        initial[f] = msg.hist[f].allowed(cmd.a, cmd.resp, self, cmd.index) or {False, True}
                    self.claim(dst, d, floor, initial, msg.content, cmd, "copied")
                for u in uids:
                    if u not in sources and not src.msgs[u].possibly_gone(cmd.resp):
                        self.v("copy-skipped", f"UID {u} copied", f"COPYUID {code}", cmd)
                if move and self.sel is sel and not self.resync:
                    for s in sources:
                        if s in sel.view:
                            self.v("move-left-message", f"UID {s} expunged by MOVE", "still in the session's view", cmd)
        self.settle(dst, cmd)

    async def op_search(self, uid: bool):
        rng = self.rng
        sel, mb = self.sel, self.sel.mailbox
        keys = ["ALL", "SEEN", "UNSEEN", "FLAGGED", "DELETED", "KEYWORD", "UNKEYWORD", "UID", "RECENT", "NEW", "OLD"]
        key = rng.choice(keys)
        flag = {"SEEN": "\\Seen", "UNSEEN": "\\Seen", "FLAGGED": "\\Flagged", "DELETED": "\\Deleted"}.get(key)
        criteria = key
        lo = hi = 0
        if key in ("KEYWORD", "UNKEYWORD"):
            flag = rng.choice(KEYWORDS)
            criteria = f"{key} {flag}"
        elif key == "UID":
            known = [u for u in sel.view if u is not None]
            if not known:
                return await self.op_noop()
            lo = rng.choice(known)
            hi = lo + rng.randint(0, 6)
            criteria = f"UID {lo}:{hi}"
        n0 = len(sel.view)
        cmd = await self.command("UID SEARCH" if uid else "SEARCH", criteria)
        if not self.answered(cmd) or self.sel is not sel or self.resync:
            return
        found = [n for r in cmd.untagged if r.name == "SEARCH" for n in r.data]
        if uid:
            if None not in sel.view:
                # ALLOWANCE: UID SEARCH may be followed by EXPUNGE responses (RFC 3501 §7.4.1 only
                # forbids them for the sequence-number forms).
                stray = [u for u in found if u not in sel.view and u not in cmd.expunged]
                if stray:
                    self.v("search-unknown-uid", "UIDs of the session's messages", compress(stray), cmd)
            result = set(found)
        else:
            bad = [n for n in found if not 1 <= n <= len(sel.view)]
            if bad:
                self.v("search-bad-seq", f"sequence numbers 1..{len(sel.view)}", compress(bad), cmd)
            result = {sel.view[n - 1] for n in found if 1 <= n <= len(sel.view)}
        for i, u in enumerate(sel.view):
            if u is None or u not in mb.msgs:
                continue
            msg = mb.msgs[u]
            if msg.possibly_gone(cmd.resp):
                continue
            member = u in result
            wrong = None
            if key == "ALL":
                wrong = not member and i < n0
            elif key == "UID":
                wrong = member != (lo <= u <= hi)
            elif flag is not None:
                allowed = msg.hist[flag].allowed(cmd.a, cmd.resp, self, cmd.index)
                positive = key in ("SEEN", "FLAGGED", "DELETED", "KEYWORD")
                wrong = not any((v == positive) == member for v in allowed)
                if wrong:
                    self.v(
                        "search",
                        f"UID {u} {'in' if not member else 'not in'} the result of {criteria}: {flag} may only be "
                        f"{'/'.join(str(x) for x in sorted(allowed))} ({self.describe_writes(msg.hist[flag])})",
                        f"{'in' if member else 'not in'} the result",
                        cmd,
                    )
                continue
            elif key in ("RECENT", "OLD"):
                self.observe_recent(u, member == (key == "RECENT"), cmd, f"SEARCH {key}: UID {u} {'in' if member else 'not in'}")
                continue
            elif key == "NEW":
                if member:
                    self.observe_recent(u, True, cmd, f"SEARCH NEW: UID {u} in")
                    allowed = msg.hist["\\Seen"].allowed(cmd.a, cmd.resp, self, cmd.index)
                    wrong = False not in allowed
                elif sel.recent.get(u, (False,))[0]:
                    allowed = msg.hist["\\Seen"].allowed(cmd.a, cmd.resp, self, cmd.index)
                    wrong = True not in allowed
            if wrong:
                self.v("search", f"UID {u} {'not ' if member else ''}matching {criteria}", f"{'in' if member else 'not in'} the result", cmd)

    async def op_status(self):
        rng = self.rng
        others = [n for n in MAILBOXES if self.sel is None or n != self.sel.mailbox.name]
        name = rng.choice(others if rng.random() < 0.9 else MAILBOXES)
        mb = self.user.mailboxes[name]
        floor_uid, floor_next = mb.max_known_uid, mb.uidnext_seen
        cmd = await self.command("STATUS", f"{quote(name)} (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
        if not self.answered(cmd):
            return
        status = [r.data[1] for r in cmd.untagged if r.name == "STATUS"]
        if not status:
            self.v("status", "a STATUS response", "none", cmd)
            return
        values = {k: int(v) for k, v in status[-1].items()}
        self.check_uidvalidity(mb, values["UIDVALIDITY"], cmd)
        if self.sel is not None and self.sel.mailbox is mb:
            # ALLOWANCE (RFC 3501 §6.3.10: STATUS "SHOULD NOT be used on the currently
            # selected mailbox"): the answer may come from the session's own view, as
            # stale as its last sync (Dovecot: OK [CLIENTBUG]). Only UIDVALIDITY is
            # checked.
            return
        self.check_uidnext(mb, values["UIDNEXT"], floor_uid, floor_next, cmd)
        messages = values["MESSAGES"]
        if values["RECENT"] > messages or values["UNSEEN"] > messages:
            self.v("status", "RECENT and UNSEEN <= MESSAGES", str(values), cmd)
        sure = sum(
            1
            for m in mb.msgs.values()
            if m.created[1] < cmd.sent and not m.possibly_gone(cmd.resp) and m.origin not in ("pending", "unexplained")
        )
        if messages < sure:
            self.v("status", f"MESSAGES >= {sure} (messages nobody removed)", str(messages), cmd)

    async def op_noop(self):
        cmd = await self.command("NOOP", "")
        self.answered(cmd)

    async def op_idle(self):
        cmd = await self.command("IDLE", "")
        self.answered(cmd)

    async def op_deliver(self):
        """New mail for one of the users, as the MTA would hand it over."""
        rng = self.rng
        active = [u for u in self.checker.users if u.active > 0]
        user = self.user if rng.random() < 0.5 else rng.choice(active or self.checker.users)
        await self.checker.deliver(user, rng)

    async def step(self):
        rng = self.rng
        if self.sel is None or self.resync:
            return await self.select(rng.choice(MAILBOXES), rng.random() < 0.85)
        if None in self.sel.view:
            return await self.sync_view()
        rw = self.sel.rw
        ops = [
            ("fetch", 22, self.op_fetch),
            ("store", 14 if rw else 0, lambda: self.op_store(False)),
            ("uid store", 6 if rw else 0, lambda: self.op_store(True)),
            ("expunge", 3 if rw else 0, lambda: self.op_expunge(False)),
            ("uid expunge", 2 if rw else 0, lambda: self.op_expunge(True)),
            ("append", 6, self.op_append),
            ("copy", 3, lambda: self.op_copy(rng.random() < 0.5, False)),
            ("move", 3 if rw else 0, lambda: self.op_copy(rng.random() < 0.5, True)),
            ("search", 6, lambda: self.op_search(False)),
            ("uid search", 4, lambda: self.op_search(True)),
            ("status", 4, self.op_status),
            ("noop", 4, self.op_noop),
            ("idle", 3, self.op_idle),
            ("select", 6, lambda: self.select(rng.choice(MAILBOXES), rng.random() < 0.85)),
            ("deliver", 4, self.op_deliver),
        ]
        op = rng.choices(ops, [w for _, w, _ in ops])[0]
        await op[2]()


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------


def make_message(rng: random.Random, tag: str) -> bytes:
    """A small message of one of a few shapes (plain, alternative, with attachment)."""
    head = (
        f"From: \"Stress, Sender\" <sender@else.test>\r\nTo: someone@example.test\r\n"
        f"Subject: stress {tag}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{tag}@stress.test>\r\nMIME-Version: 1.0\r\n"
    )
    shape = rng.randrange(3)
    words = " ".join(rng.choice(["lifeboat", "mail", "outage", "replay", "phone"]) for _ in range(12))
    if shape == 0:
        return (head + f"Content-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n").encode()
    if shape == 1:
        return (
            head + 'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
            f"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
            f"--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>{words}</p>\r\n--b1--\r\n"
        ).encode()
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(10, 300)))
    encoded = base64.encodebytes(blob).decode().replace("\n", "\r\n")
    return (
        head + 'Content-Type: multipart/mixed; boundary="b2"\r\n\r\n'
        f"--b2\r\nContent-Type: text/plain\r\n\r\n{words}\r\n"
        f'--b2\r\nContent-Type: application/octet-stream; name="x.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}--b2--\r\n"
    ).encode()


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


class Checker:
    def __init__(self, args):
        self.host, self.port = args.host, args.port
        self.seed = args.seed
        self.report = Report(args.label, args.seed, args.show)
        self.users = [User(*spec.split(":", 1)) for spec in args.user]
        self.clients = args.clients
        self.ops = args.ops
        self.seconds = args.seconds
        self.timeout = args.timeout
        self.serial = args.serial
        self.lock = None
        self.idle_seconds = (0.05, 0.2) if args.serial else (0.1, 1.0)
        self.deliver_spec = args.deliver
        self.deadline = INF
        self.delivery_n = 0

    async def deliver(self, user: User, rng: random.Random):
        if not self.deliver_spec:
            return
        self.delivery_n += 1
        body = make_message(rng, f"d{self.delivery_n}.{rng.randrange(1 << 30)}")
        mb = user.mailboxes["INBOX"]
        mb.unknown_budget += 1
        record = [tick(), INF]
        mb.deliveries.append(record)
        how, host, port = self.deliver_spec.split(":")

        def send():
            cls = smtplib.LMTP if how == "lmtp" else smtplib.SMTP
            with cls(host, int(port), timeout=self.timeout) as smtp:
                smtp.sendmail("sender@else.test", [user.name], body)

        async def go():
            try:
                await asyncio.to_thread(send)
                record[1] = tick()
                self.report.deliveries += 1
            except Exception as e:  # the message may or may not be there: keep the budget
                self.report.delivery_errors[f"{type(e).__name__}: {str(e)[:80]}"] += 1

        if self.lock is not None:
            async with self.lock:
                await go()
        else:
            await go()

    async def baseline(self):
        """What is in every mailbox before the run (read-only, so \\Recent is left)."""
        for user in self.users:
            session = Session(self, None, user, random.Random(0))
            await session.login()
            for name in MAILBOXES:
                if name != "INBOX":
                    cmd = await session.command("CREATE", quote(name))
                    if cmd.status != "OK" and cmd.code != "ALREADYEXISTS":
                        # Some servers say "already exists" without the code.
                        if "exist" not in cmd.resp_text.lower():
                            session.answered(cmd)
                mb = user.mailboxes[name]
                mb.baseline = True
                await session.select(name, False, baseline=True)
                mb.baseline = False
                mb.selections.clear()
            await session.logout()
            session.writer.close()

    def pick_user(self, rng: random.Random) -> User:
        active = [u for u in self.users if u.active > 0]
        if active and rng.random() < 0.6:
            return rng.choice(active)  # another device of a user already logged in
        return rng.choice(self.users)

    async def client(self, index: int):
        rng = random.Random(f"{self.seed}/client/{index}")
        done = 0
        while done < self.ops and time.monotonic() < self.deadline:
            user = self.pick_user(rng)
            session = Session(self, index, user, rng)
            user.active += 1
            self.report.sessions += 1
            try:
                await session.login()
                for _ in range(rng.randint(8, 40)):
                    if done >= self.ops or time.monotonic() >= self.deadline:
                        break
                    await session.step()
                    done += 1
                await session.logout()
            except SessionLost as e:
                self.report.violation("session-lost", session, session.cmd, "the session goes on", str(e))
            except (ValueError, IndexError, KeyError, TypeError, AttributeError) as e:
                # A response the checker cannot parse, or a bug of its own: say so and
                # go on with a new session.
                self.report.violation(
                    "checker-error", session, session.cmd, "a response the checker understands",
                    "".join(traceback.format_exception(e))[-600:],
                )
            finally:
                user.active -= 1
                session.close_selection(tick())
                if session.writer is not None:
                    session.writer.close()

    async def run(self) -> int:
        started = time.monotonic()
        await self.baseline()
        if self.serial:
            self.lock = asyncio.Lock()
        if self.seconds:
            self.deadline = time.monotonic() + self.seconds
        await asyncio.gather(*(self.client(i) for i in range(self.clients)))
        self.report.elapsed = time.monotonic() - started
        return 1 if self.report.violations else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", action="append", required=True, help="ADDRESS:PASSWORD, repeatable")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--ops", type=int, default=1 << 62, help="operations per client")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long")
    ap.add_argument("--deliver", default="", help="smtp:HOST:PORT or lmtp:HOST:PORT for new mail")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--serial", action="store_true", default=os.environ.get("IMAP_STRESS_SERIAL") == "1")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--label", default="server")
    ap.add_argument("--show", type=int, default=3, help="violations of each kind shown in full")
    ap.add_argument("--json", help="also write the report here")
    ap.add_argument("--trace", help="write every command and response here")
    args = ap.parse_args()
    if args.seed is None:
        env = os.environ.get("IMAP_STRESS_SEED")
        args.seed = int(env) if env else random.SystemRandom().randrange(1, 1 << 31)
    print(f"imap_stress {args.label}: seed {args.seed}{' (serial)' if args.serial else ''}", flush=True)
    global _trace
    if args.trace:
        _trace = open(args.trace, "w")
    checker = Checker(args)
    try:
        status = asyncio.run(checker.run())
    except SessionLost as e:
        print(f"imap_stress: cannot run: {e}", file=sys.stderr)
        return 2
    print(checker.report.render(), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(checker.report.as_json(), f, indent=1)
    return status


if __name__ == "__main__":
    sys.exit(main())
