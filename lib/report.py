# What /api/state and /metrics report of the MCU link and of every DP the meter sent.
# Loaded only while one of them is served: its code would otherwise sit in the heap for
# the moments (Home Assistant discovery, an update) that need the room.
import json

import spm02
from tuya import T_VALUE, TYPE_NAMES
from ticks import diff as ticks_diff


def mcu_status(mcu, now):
    """The link state, for /api/state, /metrics and the page."""
    link = mcu.link
    m = mcu.meter
    e = mcu.dec.errors()
    e["bad_records"] = m.bad_records
    e["timeouts"] = link.timeouts
    e["unknown_cmds"] = link.unknown
    return {
        "online": link.online,
        "product_key": link.product_key,
        "mcu_version": link.mcu_version,
        "layout": m.layout_name(),
        "layout_setting": m.setting,
        "layout_reason": m.layout_reason,
        "neg_encoding": m.neg_encoding,
        "frames_rx": mcu.dec.frames,
        "frames_tx": link.tx,
        "retries": link.retries,
        "reboots": link.reboots,
        "polls": link.polls,
        "poll_s": link.poll_ms // 1000,
        "errors": e,
        "last_report_s": None if mcu.last_report is None
        else ticks_diff(now, mcu.last_report) // 1000,
    }


def dps_parts(meter, now):
    """Every DP the meter sent, mapped or not, as pieces of JSON text: "[", one object
    {id, type, hex, value, key, age_s[, scaled, unit]} per DP, "]"."""
    sep = "["
    for dpid in sorted(meter.dps):
        d = meter.dps[dpid]
        r = meter.row(dpid)
        v = d.value()
        if isinstance(v, int):
            val = "%d" % v
        elif isinstance(v, str):
            val = json.dumps(v)
        else:
            val = '"%s"' % d.hex()
        extra = ""
        if r and isinstance(v, int) and d.type == T_VALUE:
            extra = ', "scaled": %s, "unit": %s' % (spm02.fmt(v, r[4]), json.dumps(r[5]))
        yield '%s{"id": %d, "type": "%s", "hex": "%s", "value": %s, "key": %s, "age_s": %d%s}' % (
            sep, dpid, TYPE_NAMES[d.type] if d.type < 6 else d.type, d.hex(), val,
            '"%s"' % r[2] if r else "null", ticks_diff(now, d.t) // 1000, extra)
        sep = ", "
    yield "]" if sep == ", " else "[]"


def dps_json(meter, now):
    return "".join(dps_parts(meter, now))


def dp_list(meter, now):
    """dps_parts as objects (for tools and tests: the device writes dps_parts)."""
    return json.loads(dps_json(meter, now))
