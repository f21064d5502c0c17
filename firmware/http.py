# A small HTTP/1.0-style server: one request per connection, everything bounded
# (connections, request line, headers, body, time), every socket closed on every path.
#
# Sockets: an ESP32's lwIP has 10 in all, and at the limit socket() fails, so a flood of
# HTTP clients must not take MQTT's. The server accepts only while it has a free slot
# (asyncio's own server accepts everything): at most MAX_CONN clients, plus one more
# for a moment when a new client pushes out the oldest idle one. Beyond that clients
# wait in a short listen backlog. Listener + 5 clients + MQTT + DNS/NTP stay under 10.
import gc
import socket
import time

import asyncio
from asyncio import core
from micropython import const

from firmware import log
from firmware.borrow import borrow, TURN

MAX_CONN = const(4)       # clients being served; one more only while evicting an idle one
BACKLOG = const(1)        # connections lwIP holds for us while we do not accept
EVICT_MS = const(200)     # an idle client may be pushed out once it had this long to send
MAX_HEAD = const(2048)    # request line + headers
MAX_LINE = const(512)     # request line
MAX_BODY = const(1024)
MAX_CONFIG = const(4096)  # POST /api/config: a whole config.json restored (portal.MAX_FILE)
REQUEST_MS = const(5000)  # the whole request (head and body) must arrive within this
SEND_MS = const(10000)
CHUNK = const(512)

# "status reason" lines: one string, not a dict of strings (less heap from .mpy)
REASONS = ("\n200 OK\n400 Bad Request\n401 Unauthorized\n403 Forbidden\n404 Not Found\n"
           "405 Method Not Allowed\n408 Request Timeout\n409 Conflict\n413 Payload Too Large\n"
           "414 URI Too Long\n415 Unsupported Media Type\n431 Request Header Fields Too Large\n500 Internal Server Error\n"
           "503 Service Unavailable\n")


def reason(status):
    i = REASONS.find("\n%d " % status)
    return REASONS[i + 5:REASONS.find("\n", i + 1)] if i >= 0 else ""
OTA = "/api/ota"  # POST: an update, streamed to flash by firmware/ota.py (no MAX_BODY)
CONFIG = "/api/config"


def listen(host, port):
    """A non-blocking listening socket. Only what lwIP's setsockopt knows (SO_REUSEADDR,
    its level ignored) and an explicit backlog (lwIP's default is 2)."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.listen(BACKLOG)
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


async def _readable(s):
    # What asyncio's own server waits on: the listening socket has a client to accept
    yield core._io_queue.queue_read(s)


class HttpError(Exception):
    def __init__(self, status, msg=""):
        self.status = status
        self.msg = msg


class Http:
    def __init__(self, app, page_path):
        self.app = app
        self.cfg = app.cfg["http"]
        self.page_path = page_path
        self.active = 0
        self.served = 0
        self.rejected = 0
        self.mem_waits = 0  # a request waited for room in the heap
        self._wrote = False  # the answer being made has written something (one at a time: TURN)
        self.server = None
        self.updating = False  # an update is being received (or is installed: restarting)
        self.restarting = False  # a restart is due: nothing more is served
        self._waiting = []  # [task, accepted at] of clients still sending their request, oldest first
        self._free = asyncio.Event()  # set when a client's socket is closed

    async def run(self):
        """Listen; if the port cannot be had, say so and try again (never die). Then
        accept clients while there is room for them."""
        delay = 1
        while self.server is None:
            try:
                self.server = listen(self.cfg["host"], self.cfg["port"])
                log.info("http: listening on %s:%d", self.cfg["host"], self.cfg["port"])
            except OSError as e:
                log.error("http: cannot listen on port %d: %r; again in %d s", self.cfg["port"], e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60)
        s = self.server
        while True:
            await self._room()
            await _readable(s)
            try:
                c, addr = s.accept()
            except OSError as e:  # the client gave up, or no socket left (ENFILE): later
                log.log("D", "http: accept: %r", e)
                await asyncio.sleep_ms(100)
                continue
            c.setblocking(False)
            if self.active >= MAX_CONN and self._waiting:
                # push out the oldest idle client, so idle ones cannot lock out real ones
                self._waiting.pop(0)[0].cancel()
            self.active += 1
            st = asyncio.StreamReader(c)
            # waiting for its request from now: the age that makes it evictable counts from here
            self._waiting.append([asyncio.create_task(self._conn(st, st)), time.ticks_ms()])

    async def _room(self):
        """Until a client may be accepted: under the cap, or at the cap with an idle client
        that has had EVICT_MS to send its request."""
        while True:
            if self.active < MAX_CONN:
                return
            if self.active == MAX_CONN and self._waiting:
                wait = EVICT_MS - time.ticks_diff(time.ticks_ms(), self._waiting[0][1])
                if wait <= 0:
                    return
                await asyncio.sleep_ms(wait)
                continue
            self._free.clear()
            await self._free.wait()

    async def _conn(self, r, w):
        me = asyncio.current_task()
        try:
            try:
                method, path, headers, body = await asyncio.wait_for_ms(self._request(r), REQUEST_MS)
            finally:
                for i, x in enumerate(self._waiting):
                    if x[0] is me:
                        self._waiting.pop(i)
                        break
            o = headers.get("origin")
            if method == "POST" and o is not None and o.partition("://")[2].lower() != headers.get("host", "").lower():
                # another site's page in the owner's browser (a browser sends Origin with every
                # POST; curl and make ota send none): nothing is done, not even read
                raise HttpError(403, "not from another site")
            if path == OTA and method == "POST":
                try:
                    if self.app.test_no_room == "import" and not self.app.update_mode:
                        raise MemoryError
                    with borrow("firmware.ota") as ota:  # loaded only while an update runs
                        await ota.handle(self, r, w, headers, body)
                except MemoryError:  # its code did not fit now: nothing was read or changed
                    await self._send(w, 503, "application/json",
                                     self.app.no_room_for_update(self._authorized(headers)), "Retry-After: 10\r\n")
            else:
                await asyncio.wait_for_ms(self._turn(w, method, path, headers, body), SEND_MS)
            self.served += 1
        except HttpError as e:
            self.rejected += 1
            await self._reply_error(w, e.status, e.msg)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            # too slow, or pushed out by a newer connection while it sent nothing useful
            self.rejected += 1
            await self._reply_error(w, 408, "request timeout")
        except OSError as e:
            log.log("D", "http: client went away: %r", e)  # reset or broken pipe: its loss
        except Exception as e:
            log.warn("http: %r", e)
        finally:
            try:
                w.close()
                await w.wait_closed()
            except BaseException:
                pass
            self.active -= 1
            self._free.set()

    async def _reply_error(self, w, status, msg):
        try:
            await asyncio.wait_for_ms(
                self._send(w, status, "text/plain", (msg or reason(status)) + "\n"), 1000)
        except BaseException:
            pass

    async def _request(self, r):
        """(method, path, {lower-case header: value}, body bytes), all within bounds."""
        head = bytearray()
        end = -1
        while end < 0:
            try:
                data = await r.read(CHUNK)
            except MemoryError:  # the busiest moments: the request waits in lwIP for room
                self.mem_waits += 1
                gc.collect()
                await asyncio.sleep_ms(50)
                continue
            if not data:
                raise HttpError(400, "incomplete request")
            head.extend(data)
            end = head.find(b"\r\n\r\n")
            if end < 0 and len(head) > MAX_HEAD:
                nl = head.find(b"\r\n")
                if nl < 0 or nl > MAX_LINE:
                    raise HttpError(414 if head[:4] in (b"GET ", b"POST") else 400)
                raise HttpError(431)
        if end > MAX_HEAD:
            raise HttpError(431)
        mv = memoryview(head)  # one copy of each part, not a slice's and then its bytes'
        rest = bytes(mv[end + 4:])
        try:
            text = str(mv[:end], "utf-8")
        except Exception:
            raise HttpError(400, "request is not text")
        mv = head = None
        lines = text.split("\r\n")
        if len(lines[0]) > MAX_LINE:
            raise HttpError(414)
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[1].startswith("/"):
            raise HttpError(400, "bad request line")
        headers = {}
        for line in lines[1:]:
            k, sep, v = line.partition(":")
            if not sep:
                raise HttpError(400, "bad header")
            headers[k.strip().lower()] = v.strip()
        n = headers.get("content-length", "0")
        try:
            n = int(n)
        except ValueError:
            raise HttpError(400, "bad content-length")
        if n < 0:
            raise HttpError(400, "bad content-length")
        if parts[0] == "POST" and parts[1].split("?", 1)[0] == OTA:
            return "POST", OTA, headers, rest  # the rest of the body stays in r
        if n > (MAX_CONFIG if parts[1] == CONFIG else MAX_BODY):
            raise HttpError(413)
        body = rest[:n]
        while len(body) < n:
            data = await r.read(n - len(body))
            if not data:
                raise HttpError(400, "incomplete body")
            body += data
        return parts[0], parts[1], headers, body

    async def _turn(self, w, method, path, headers, body):
        async with TURN:  # one answer at a time, and not during a save (firmware/borrow.py)
            while True:
                gc.collect()  # what the answer before left: its code in one piece of heap
                self._wrote = False
                try:
                    return await self._route(w, method, path, headers, body)
                except MemoryError:
                    # no room for the answer's code yet (the heap in pieces after a burst):
                    # while nothing of it went out, wait for the room and answer then
                    if self._wrote:
                        raise
                    self.mem_waits += 1
                    await asyncio.sleep_ms(50)

    async def _route(self, w, method, path, headers, body):
        if self.restarting:
            return await self._send(w, 503, "text/plain", "restarting\n")
        path, _, query = path.partition("?")
        if self.app.mcu is None and path != "/api/state":  # update mode: HTTP for an update only
            return await self._send(w, 503, "text/plain", "update mode: POST /api/ota, GET /api/state\n")
        if method == "GET" and path == "/":
            return await self._page(w)
        # the rest: the module that answers (with the modules it imports that nothing else
        # keeps) is borrowed while it does, so no answer's code stays in the heap
        also = ()
        if method == "GET" and path == "/api/state":  # the page polls it
            name, also = "firmware.status", ("report", "reasons")
        elif method == "GET" and path == "/api/history":
            name = "firmware.history_api"
        elif method == "GET" and path == "/metrics":
            name = "firmware.scrape"
        elif path.startswith(CONFIG) or path == "/api/log":  # the console
            name = "firmware.cfgsave" if path == CONFIG and method == "POST" else "firmware.console"
            also = ("firmware.config", "files", "tz", "units")
        else:
            name = "firmware.routes"
        with borrow(name, *also) as m:  # code first, then the answer's data (_turn)
            await m.serve(self, w, method, path, query, headers, body)

    async def stream(self, w, ctype, parts, every=1):
        """A 200 whose body is the pieces of text parts yields, written as they come."""
        self._head(w, 200, ctype)
        n = 0
        for part in parts:
            w.write(part)
            n += 1
            if n % every == 0:
                await w.drain()
        await w.drain()

    async def answer(self, w, r):
        """The console's (status, body: text or its parts, extra headers, restart?)."""
        if isinstance(r[1], str):
            await self._send(w, r[0], "application/json", r[1], r[2])
        else:  # the log: written without an await between its lines, so no line comes in between
            await self.stream(w, "application/json", r[1], 1 << 30)
        if r[3]:
            self.app.restart_soon(1000)

    def _authorized(self, headers):
        pw = self.cfg["password"]
        if not pw:
            return True
        auth = headers.get("authorization", "")
        if not auth.startswith("Basic "):
            return False
        import binascii
        try:
            user_pw = binascii.a2b_base64(auth[6:]).decode()
        except Exception:
            return False
        return user_pw.partition(":")[2] == pw

    async def _page(self, w, path=None):
        self._head(w, 200, "text/html; charset=utf-8")
        buf = bytearray(CHUNK)
        with open(path or self.page_path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                w.write(buf if n == CHUNK else buf[:n])
                await w.drain()

    def _head(self, w, status, ctype, extra=""):
        self._wrote = True
        w.write("HTTP/1.0 %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n%sConnection: close\r\n\r\n"
                % (status, reason(status), ctype, extra))

    async def _send(self, w, status, ctype, body, extra=""):
        if isinstance(body, str):
            body = body.encode()
        self._head(w, status, ctype, "%sContent-Length: %d\r\n" % (extra, len(body)))
        w.write(body)
        await w.drain()
