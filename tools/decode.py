#!/usr/bin/env python3
"""Decode the TuyaMCU frames found in any text: OpenBeken, Tasmota or ESPHome logs,
terminal and hexdump captures, C arrays, text copied from a web page.

    make decode [JSON=1] < log
    python tools/decode.py [--json] [--layout auto|v2|cloud|spm01] [--config FILE] [FILE ...]

The hex bytes found in the text go through the firmware's own code: lib/tuya.py cuts
them into frames (broken ones are counted and skipped, as on the device), and the MCU's
frames feed lib/mcu.py, so the DP layout and the state printed at the end are what the
firmware would publish. Every frame is then printed with its DPs named and scaled by the
DP table of the layout finally chosen (with the owner's `dps` map of a config file given with
--config). CPython only.
"""
import json
import os
import re
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIB = os.path.join(_ROOT, "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

import dptable as T  # noqa: E402
import spm02  # noqa: E402
import tuya  # noqa: E402
from mcu import Mcu  # noqa: E402

DP_CMDS = (tuya.SET_DP, tuya.REPORT, tuya.REPORT_ACK)
WIFI_STATES = ("smartconfig", "AP config", "not connected", "connected to the router",
               "connected to the cloud")

# --- finding hex bytes in text ---------------------------------------------------

# A hex word standing on its own ("55", "0xAA", "55aa0307..."), not part of a longer word
_TOKEN = re.compile(r"(?<![0-9A-Za-z_])(0[xX])?([0-9A-Fa-f]+)(?![0-9A-Za-z_])")
# What may stand between two bytes of one run; the punctuation is the run's "kind"
_GAP = re.compile(r"\s*([,;:.\-])?\s*\Z")
_WORD = re.compile(r"[0-9A-Fa-f]+\Z")
_SPACE = re.compile(r"[^\S\t]")  # any Unicode space (NBSP, thin space, ...) but tab
_CESC = re.compile(r"\\x(?=[0-9A-Fa-f])")  # "\x55\xAA" escapes
_CHARS = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))  # invisible
_CHARS.update({ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})
_CHARS[0xFF1A] = ":"
_CHARS[0xFFFD] = " "  # a byte that was not UTF-8 (a Latin-1 NBSP, say) separates bytes


class Seg:
    """Bytes of one run of hex tokens on one line, all separated the same way."""
    __slots__ = ("data", "kind", "x", "start", "end", "last", "pure")

    def __init__(self, data, x, start, end):
        self.data = bytearray(data)
        self.kind = None  # separator: " ", ",", ":", "-", ".", ";"; None for one token
        self.x = x        # written 0x55 style
        self.start = start
        self.end = end
        self.last = self.pure = False


# TuyaMCU command names, for people (the device needs only the numbers)
CMD_NAMES = {
    0x00: "heartbeat", 0x01: "product_info", 0x02: "working_mode", 0x03: "wifi_state",
    0x04: "wifi_reset", 0x06: "set_dp", 0x07: "dp_report", 0x08: "query_state",
    0x0E: "wifi_test", 0x1C: "local_time", 0x22: "dp_report_ack", 0x23: "dp_report_acked",
    0x24: "rssi", 0x2B: "net_status", 0x34: "extended",
}


def normalise(line):
    line = _CESC.sub(" 0x", line.translate(_CHARS))
    return _SPACE.sub(" ", line)


def line_segments(line):
    """The runs of hex bytes in one (normalised) line, in order."""
    toks = []
    for m in _TOKEN.finditer(line):
        x, digits = m.group(1), m.group(2)
        if x and len(digits) <= 2:
            data = bytes((int(digits, 16),))
        elif len(digits) % 2 == 0:
            data = bytes.fromhex(digits)
        else:
            data = None  # "3", "345": a number, not bytes; it ends a run
        toks.append([data, bool(x), m.start(), m.end(), digits])
    # hexdump/xxd offsets ("00000010  55 aa ...", "0010: 55 AA ...") are not data
    if len(toks) >= 3 and toks[0][0] is not None and not line[:toks[0][2]].strip():
        gap = line[toks[0][3]:toks[1][2]]
        if len(toks[0][4]) >= 4 and toks[0][4][0] == "0" and (":" in gap or len(gap) >= 2
                                                              or "\t" in gap):
            toks[0][0] = None
    segs = []
    cur = None
    for data, x, s, e, _ in toks:
        if data is None:
            cur = None
            continue
        if cur is not None:
            m = _GAP.match(line[cur.end:s])
            kind = (m.group(1) or " ") if m else None
            if kind and cur.kind in (None, kind):
                cur.data += data
                cur.kind = kind
                cur.x = cur.x or x
                cur.end = e
                continue
        cur = Seg(data, x, s, e)
        segs.append(cur)
    for sg in segs:
        sg.last = not line[sg.end:].strip(" \t,;:.-")
        sg.pure = sg.last and not line[:sg.start].strip()
    return segs


class Frame:
    __slots__ = ("line", "ver", "cmd", "data", "raw")

    def __init__(self, line, ver, cmd, data, raw):
        self.line = line
        self.ver = ver
        self.cmd = cmd
        self.data = data
        self.raw = raw

    @property
    def from_mcu(self):
        return self.ver != 0  # the module always sends version 0x00


class Capture:
    """Text in, frames out: the hex bytes of every run that holds 55 AA (or that
    continues a frame still open) go through tuya.Decoder; the MCU's frames go
    through mcu.Mcu, so the meter state is the firmware's own."""

    def __init__(self, layout="auto", user=()):
        self.dec = tuya.Decoder()
        self.mcu = Mcu(layout, user=user)
        self.meter = self.mcu.meter
        self.frames = []
        self.lib_errors = []
        self._stream = bytearray()  # every byte fed, with the line it came from
        self._origin = []
        self._pos = 0
        self._style = None  # (kind, x) of the run fed last

    def text(self, text):
        carry = None  # an odd-length hex word wrapped over lines
        for no, line in enumerate(text.splitlines(), 1):
            line = normalise(line)
            word = line.strip()
            if _WORD.match(word):
                if carry:
                    no, word = carry[0], carry[1] + word
                    carry = None
                if len(word) % 2 and len(word) >= 16:
                    carry = (no, word)
                    continue
                line = word
            elif carry:
                self.line(*carry)
                carry = None
            self.line(no, line)
        if carry:
            self.line(*carry)
        return self

    def line(self, no, line):
        for sg in line_segments(line):
            data = sg.data
            st = self._style
            if not (self.dec.pending() and st and sg.x == st[1] and (sg.pure or sg.kind == st[0])):
                i = data.find(b"\x55\xaa")
                if i >= 0:
                    data = data[i:]  # bytes before it cannot belong to a frame
                elif sg.last and data[-1] == 0x55:
                    data = data[-1:]  # "... 55" / "AA 03 ..." on the next line
                else:
                    continue
            self._style = (sg.kind, sg.x)
            self.feed(no, bytes(data))

    def feed(self, no, data):
        self._stream += data
        self._origin += [no] * len(data)
        self.dec.feed(data)
        self._drain()

    def finish(self):
        """End of input: the line went idle; give up on partial frames, rescan them."""
        while self.dec.pending():
            self.dec.expire()
            self._drain()
        return self

    def _drain(self):
        dec = self.dec
        while dec.next():
            raw = bytes(dec.buf[:7 + dec.plen])
            # the decoder takes the first valid frame at or after the previous one
            pos = self._stream.find(raw, self._pos)
            if pos >= 0:
                self._pos = pos + len(raw)
            f = Frame(self._origin[pos] if pos >= 0 else None, dec.ver, dec.cmd,
                      raw[6:-1], raw)
            self.frames.append(f)
            if f.from_mcu:
                try:
                    self.mcu.feed(len(self.frames) * 1000, raw)
                except Exception as e:  # a lib bug must not hide the rest of the log
                    self.lib_errors.append("line %s: %s: %r" % (f.line, f.raw.hex(), e))

    def values(self):
        """meter.values(), or None where lib cannot compute it (reported in lib_errors)."""
        try:
            return self.meter.values()
        except Exception as e:
            self._lib_error("state: %r" % e)
            return None

    def _lib_error(self, text):
        if text not in self.lib_errors:
            self.lib_errors.append(text)

    def errors(self):
        e = self.dec.errors()
        e["bad_records"] = self.meter.bad_records
        return e


def scan(text, layout="auto", user=()):
    return Capture(layout, user).text(text).finish()


# --- describing frames -------------------------------------------------------------

def _num(count, dec):
    return count if not dec else float(spm02.fmt(count, dec))


def _units(count, dec, unit):
    s = spm02.fmt(count, dec)
    return s + " " + unit if unit else s


def _alarms_text(al):
    return ", ".join("%s %s %d" % (k, "on" if a["enabled"] else "off", a["threshold"])
                     for k, a in al.items()) or "none"


PHASE_NAMES = ("voltage", "current", "power", "reactive_power", "apparent_power", "power_factor")


def describe_dp(dpid, dptype, raw, layout, user=()):
    """(JSON object, text) of one DP record, read through the DP table of layout (and the
    owner's rows)."""
    r = T.row(dpid, layout, user)
    value = tuya.dp_value(dptype, raw, 0, len(raw))
    key = r[2] if r else None
    flags = r[6] if r else 0
    e = {"id": dpid, "type": tuya.TYPE_NAMES[dptype] if dptype < 6 else str(dptype),
         "hex": raw.hex(), "value": value.hex() if isinstance(value, bytes) else value,
         "key": key}
    shown = json.dumps(value) if isinstance(value, str) else e["value"]
    note = None
    fields = spm02.phase_fields(raw) if flags & T.F_PHASE and dptype == tuya.T_RAW else None
    if fields:
        e["phase"] = {}
        parts = []
        for j, c in enumerate(fields):
            if c is not None:
                dec, unit = T.PHASE_FIELDS[j][1:]
                e["phase"][PHASE_NAMES[j]] = _num(c, dec)
                parts.append(_units(c, dec, unit) if unit else "PF " + spm02.fmt(c, dec))
        note = " ".join(parts)
        if len(raw) != 8:
            e["format"] = "v%02d" % raw[0]
            note += ", Tuya v%02d format" % raw[0]
        enc = spm02.phase_encoding(raw)
        if enc:
            e["neg_encoding"] = enc
            note += ", negative as " + enc
    elif flags & T.F_FAULTS and isinstance(value, int):
        value &= 0xFFFFFFFF  # a bitmap sent as a (signed) value type
        e["faults"] = spm02.fault_names(value, layout)
        shown = "0x%02x" % value
        note = ", ".join(e["faults"]) or "none"
    elif flags & T.F_ALARMS:
        e["alarms"] = spm02.alarms(dpid, raw)
        note = _alarms_text(e["alarms"])
        ri = spm02.report_interval(raw, len(raw)) if dpid == T.REPORT_DP else None
        if ri is not None:
            e["report_interval"] = ri
            note += "; report interval %d s" % ri
    elif r and isinstance(value, int) and dptype == tuya.T_VALUE and (r[4] or r[5]):
        e["scaled"] = _num(value, r[4])
        e["unit"] = r[5]
        note = _units(value, r[4], r[5])
    elif dptype == tuya.T_BOOL and isinstance(value, int):
        note = "on" if value else "off"
    text = "DP %d %s %s=%s" % (dpid, e["type"], key or "?", shown)
    return e, text + (" (%s)" % note if note else "")


def describe(f, layout, user=()):
    """(JSON object, text) of one frame."""
    name = CMD_NAMES.get(f.cmd) or "cmd_0x%02x" % f.cmd
    e = {"line": f.line, "dir": "mcu" if f.from_mcu else "module", "ver": f.ver,
         "cmd": f.cmd, "name": name, "hex": f.raw.hex(), "data": f.data.hex()}
    arrow = "MCU→module" if f.from_mcu else "module→MCU"
    if f.ver not in (0, 3):
        arrow += " (ver %d)" % f.ver
    head = "L%s %s %s" % (f.line, arrow, name)
    data = f.data
    parts = []
    if f.cmd in DP_CMDS and data:
        recs = tuya.dp_records(data, 0, len(data))
        e["dps"] = []
        end = 0
        for dpid, typ, s, n in recs:
            de, text = describe_dp(dpid, typ, data[s:s + n], layout, user)
            e["dps"].append(de)
            parts.append(text)
            end = s + n
        if end < len(data):
            e["trailing"] = data[end:].hex()
            parts.append("%d bytes that are no DP record: %s" % (len(data) - end, e["trailing"]))
    elif f.cmd == tuya.PRODUCT and f.from_mcu and data:
        text = data.decode("utf-8", "replace")
        try:
            e["product"] = json.loads(text)
        except Exception:  # not JSON (or absurdly nested): keep the text
            e["product"] = text
        parts.append(text)
    elif f.cmd == tuya.HEARTBEAT and f.from_mcu and len(data) == 1:
        parts.append("%02x (%s)" % (data[0], "first answer since the MCU booted"
                                    if data[0] == 0 else "running"))
    elif f.cmd in (tuya.WIFI_STATE, tuya.NET_STATUS) and len(data) == 1 and data[0] < 5:
        parts.append("%02x (%s)" % (data[0], WIFI_STATES[data[0]]))
    elif f.cmd == tuya.LOCAL_TIME and not f.from_mcu and len(data) == 8:
        d = data
        parts.append("%s20%02d-%02d-%02d %02d:%02d:%02d weekday %d" % (
            "" if d[0] else "(not valid) ", d[1], d[2], d[3], d[4], d[5], d[6], d[7]))
    elif data:
        parts.append(data.hex(" "))
    return e, head + (": " + " | ".join(parts) if parts else "")


def _reading_text(key, v, dec, meter):
    if dec is not None:  # an integer count: exact text, as in the firmware's JSON
        return _units(v, dec, meter.unit_of(key) or "")
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "none"
    if key == "alarms":
        return _alarms_text(v)
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


def summary(cap):
    m = cap.meter
    lay = m.layout_name()
    n_mcu = sum(1 for f in cap.frames if f.from_mcu)
    out = ["-- %d frames: %d from the MCU, %d from the module"
           % (len(cap.frames), n_mcu, len(cap.frames) - n_mcu),
           "layout: %s (%s%s)" % (lay, m.layout_reason,
                                  "" if m.setting == "auto" else ", setting " + m.setting)]
    link = cap.mcu.link
    if link.product_info is not None or link.product_key:
        out.append("product: %s (MCU version %s)" % (link.product_key, link.mcu_version))
    if m.neg_encoding:
        out.append("negative currents/powers in raw phase DPs use the %s encoding"
                   % m.neg_encoding)
    rd = m.readings() if cap.values() is not None else []
    if cap.lib_errors:
        out.append("lib errors (see stderr): %d" % len(cap.lib_errors))
    if rd:
        out.append("state:")
        w = max(len(r[0]) for r in rd)
        for key, v, dec, ids in rd:
            out.append("  %-*s  %-16s DP %s" % (w, key, _reading_text(key, v, dec, m),
                                               ", ".join(str(i) for i in ids)))
        out.append("warnings: " + ("; ".join(m.warnings()) or "none"))
    errs = {k: v for k, v in cap.errors().items() if v}
    if errs:
        out.append("errors: " + ", ".join("%s %d" % kv for kv in errs.items()))
    return out


def final_json(cap):
    m = cap.meter
    return {"values": cap.values(), "layout": m.layout_name(), "layout_reason": m.layout_reason,
            "product_key": cap.mcu.link.product_key, "neg_encoding": m.neg_encoding,
            "frames": len(cap.frames), "errors": cap.errors(), "lib_errors": cap.lib_errors}


def main(argv=None, stdin=None, stdout=None, stderr=None):
    import argparse
    ap = argparse.ArgumentParser(description="Decode TuyaMCU frames found in any text.")
    ap.add_argument("--json", action="store_true", help="one JSON object per frame, then the state")
    ap.add_argument("--layout", default=None, choices=("auto", "v2", "cloud", "spm01"),
                    help="default: the config's layout (with --config), else auto")
    ap.add_argument("--config", help="a config.json: its layout and its dps map (the owner's DPs)")
    ap.add_argument("files", nargs="*", help="log files (default: standard input)")
    args = ap.parse_args(argv)
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    for s in (stdout, stderr):
        try:
            s.reconfigure(errors="replace")
        except (AttributeError, ValueError):
            pass
    if args.files:
        blobs = []
        for p in args.files:
            with open(p, "rb") as fh:
                blobs.append(fh.read())
        data = b"\n".join(blobs)
    else:
        data = (stdin or sys.stdin.buffer).read()
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    layout, user = args.layout or "auto", ()
    if args.config:
        sys.path.insert(0, _ROOT)
        from firmware import config
        with open(args.config, "rb") as fh:
            cfg, warnings = config.parse(fh.read().decode("utf-8", "replace"))
        for w in warnings:
            stderr.write("config: %s\n" % w)
        layout, user = args.layout or cfg["layout"], cfg["dps"]
    cap = scan(text, layout, user)
    lay = cap.meter.layout
    for f in cap.frames:
        try:
            e, line = describe(f, lay, user)
        except Exception as ex:  # a lib bug: show the frame anyway
            cap.lib_errors.append("line %s: describing %s: %r" % (f.line, f.raw.hex(), ex))
            e = {"line": f.line, "dir": "mcu" if f.from_mcu else "module", "ver": f.ver,
                 "cmd": f.cmd, "hex": f.raw.hex()}
            line = "L%s %s" % (f.line, f.raw.hex(" "))
        stdout.write((json.dumps(e) if args.json else line) + "\n")
    if args.json:
        stdout.write(json.dumps(final_json(cap)) + "\n")
    elif cap.frames:
        stdout.write("\n".join(summary(cap)) + "\n")
    if not cap.frames:
        errs = {k: v for k, v in cap.errors().items() if v}
        stderr.write("no TuyaMCU frames found%s\n" % (
            " (" + ", ".join("%s %d" % kv for kv in errs.items()) + ")" if errs else ""))
    for e in cap.lib_errors:
        stderr.write("lib error: %s\n" % e)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # decode.py < log | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
