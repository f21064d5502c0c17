# The meter's state: every DP seen, kept as the raw bytes the MCU sent, and the
# readings derived from them through the DP table, formatted exactly from integer
# counts. Also decides the DP layout and flags readings that contradict physics.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import json
from binascii import hexlify

import dptable as T
import spm02
from tuya import T_VALUE, T_STRING, T_BOOL, TYPE_NAMES, dp_value
from ticks import diff as ticks_diff


PHASES = ("a", "b", "c")
RAW_PHASE = (6, 7, 8)


class Dp:
    """One DP as last reported."""
    __slots__ = ("id", "type", "raw", "n", "t", "seq")

    def __init__(self, dpid, dptype, n):
        self.id = dpid
        self.type = dptype
        self.raw = bytearray(n)
        self.n = n
        self.t = 0
        self.seq = 0

    def value(self):
        return dp_value(self.type, self.raw, 0, self.n)

    def hex(self):
        return hexlify(self.raw).decode()


class Meter:
    def __init__(self, layout="auto"):
        self.dps = {}
        self.seq = 0  # bumped on every change of a DP or of the layout
        self.setting = layout if layout in ("auto", "v2", "cloud") else "auto"
        self.layout = T.V2
        self._why = WHY_DEFAULT << 16
        self.product_key = None
        self.neg_encoding = None  # seen in a raw phase DP: "offset" or "twos"
        self.bad_records = 0
        if self.setting != "auto":
            self.layout = T.layout_code(self.setting)
            self._why = WHY_FORCED << 16

    # --- input ---------------------------------------------------------------

    def dps_in(self, buf, start, end, now):
        """Take every DP record in buf[start:end]. True when anything changed."""
        changed = False
        i = start
        while i + 4 <= end:
            n = buf[i + 2] << 8 | buf[i + 3]
            if i + 4 + n > end:
                self.bad_records += 1
                break
            if self.dp_in(buf[i], buf[i + 1], buf, i + 4, n, now):
                changed = True
            i += 4 + n
        if changed:
            self._detect()
        return changed

    def dp_in(self, dpid, dptype, buf, start, n, now):
        d = self.dps.get(dpid)
        if d is not None and d.type == dptype and d.n == n:
            raw = d.raw
            j = 0
            while j < n and raw[j] == buf[start + j]:
                j += 1
            d.t = now
            if j == n:
                return False
        else:
            d = Dp(dpid, dptype, n)
            d.t = now
            self.dps[dpid] = d
        raw = d.raw
        for j in range(n):
            raw[j] = buf[start + j]
        self.seq += 1
        d.seq = self.seq
        if dpid in RAW_PHASE and n == 8:
            e = spm02.phase_encoding(raw)
            if e:
                self.neg_encoding = e
        return True

    def product(self, key):
        self.product_key = key
        self._detect()

    # --- layout --------------------------------------------------------------

    def _count(self, dpid):
        d = self.dps.get(dpid)
        if d is None or d.type != T_VALUE or d.n != 4:
            return None
        return d.value()

    def _evidence(self):
        """Why the DPs themselves point to a layout, as WHY_* << 16 | DP id, or 0.
        Runs on every changed report, so it allocates nothing."""
        dps = self.dps
        for d in range(111, 131):
            if d in dps:
                return WHY_HIGH << 16 | d
        for k in range(3):
            raw = dps.get(6 + k)
            if raw is None or raw.n != 8:
                continue
            r = raw.raw  # the fields one by one: spm02.phase would allocate a tuple
            v = r[0] << 8 | r[1]
            i = spm02.field(r, 2)
            p = spm02.field(r, 5)
            base = 102 + 3 * k  # v2: voltage, current, power of phase k
            if self._matches(base, base + 1, base + 2, v, i, p):
                return WHY_V2 << 16 | base
            base = 103 + 9 * k  # cloud: voltage, current, power of phase k
            if self._matches(base, base + 1, base + 2, v, i, p):
                return WHY_CLOUD << 16 | base
        return 0

    def _matches(self, dv, di, dp, v, i, p):
        a = self._count(dv)
        b = self._count(di)
        c = self._count(dp)
        return a is not None and b is not None and c is not None and _near(a, v) and _near(b, i) and _near(c, p)

    def evidence(self):
        """(layout, reason) from the DPs themselves, or None."""
        why = self._evidence()
        return (_WHY_LAYOUT[why >> 16], _reason(why, None)) if why else None

    @property
    def layout_reason(self):
        return _reason(self._why, self.product_key)

    def _detect(self):
        if self.setting != "auto":
            return
        why = self._evidence()
        if not why:
            if self._why >> 16 in (WHY_HIGH, WHY_V2, WHY_CLOUD):
                return  # the DPs decided before: a report without the deciding DPs changes nothing
            pk = self.product_key
            hint = T.PRODUCT_HINTS.get(pk) if isinstance(pk, str) else None
            if hint is None and isinstance(pk, str) and "g5n4t0" in pk:
                hint = T.CLOUD
            if hint is None:
                return
            why = (WHY_HINT_V2 if hint == T.V2 else WHY_HINT_CLOUD) << 16
        if why != self._why:
            self._why = why
            self.layout = _WHY_LAYOUT[why >> 16]
            self.seq += 1

    def layout_name(self):
        return T.LAYOUTS[self.layout]

    # --- readings ------------------------------------------------------------

    def _row_dp(self, key):
        """(row, Dp) of the reading named key in the current layout, or (row, None)."""
        r = T.row_for_key(key, self.layout)
        if r is None:
            return None, None
        return r, self.dps.get(r[0])

    def phase_counts(self, k):
        """(V 0.1 V, I 0.001 A, P W) of phase k with the DP ids they came from: the
        layout's own DPs first, else the raw phase DP. Missing parts are None."""
        p = PHASES[k]
        out = []
        ids = []
        raw = self.dps.get(RAW_PHASE[k])
        rv = spm02.phase(raw.raw) if raw is not None and raw.n == 8 else None
        for j, name in enumerate(("voltage_", "current_", "power_")):
            r, d = self._row_dp(name + p)
            if d is not None and d.type == T_VALUE:
                out.append(d.value())
                ids.append(d.id)
            elif rv is not None:
                out.append(rv[j])
                ids.append(RAW_PHASE[k])
            else:
                out.append(None)
                ids.append(None)
        return out, ids

    def iter_readings(self):
        """(key, value, decimals, dpids) one by one: decimals is None for a plain JSON value,
        else value is an integer count. dpids names the DPs the reading came from."""
        have = set()
        lay = self.layout
        for dpid, rl, key, typ, dec, unit, flags in T.ROWS:
            if (rl != T.ANY and rl != lay) or flags & (T.F_HIDDEN | T.F_PHASE | T.F_ALARMS):
                continue  # phase DPs feed the per-phase readings, alarms are merged below
            d = self.dps.get(dpid)
            if d is None:
                continue
            v = d.value()
            if flags & T.F_FAULTS:
                bits = v if isinstance(v, int) else 0
                if bits < 0:  # sent as a signed value: the bitmap is its 32 bits
                    bits &= 0xFFFFFFFF
                yield ("faults", spm02.fault_names(bits, lay), None, (dpid,))
                yield ("faults_raw", bits, 0, (dpid,))
                continue
            if d.type == T_BOOL:
                v, dec = v == 1, None
            elif not isinstance(v, int):
                v, dec = v if isinstance(v, str) else d.hex(), None
            elif d.type != T_VALUE:
                dec = 0
            have.add(key)
            yield (key, v, dec, (dpid,))
        # Per-phase readings from the raw phase DPs where the layout's own DPs are missing
        for k in range(3):
            raw = self.dps.get(RAW_PHASE[k])
            if raw is None or raw.n != 8:
                continue
            rv = spm02.phase(raw.raw)
            for j, (name, dec) in enumerate((("voltage_", 1), ("current_", 3), ("power_", 0))):
                key = name + PHASES[k]
                if key not in have:
                    yield (key, rv[j], dec, (RAW_PHASE[k],))
        # Per-phase power factor where the layout has none: P / (V * I)
        for k in self._derived_phases():
            (v, i, p), ids = self.phase_counts(k)
            if v and i and p is not None:
                # P [W] / (V [0.1 V] * I [0.001 A]) = P * 10000 / (v * i)
                c = spm02.ratio(p * 10000, v * abs(i), T.DERIVED_DECIMALS)
                yield (T.DERIVED[k], c, T.DERIVED_DECIMALS, tuple(ids))
        al = {}
        for dpid in (17, 18):
            d = self.dps.get(dpid)
            if d is not None:
                al.update(spm02.alarms(dpid, d.raw))
        if al:
            yield ("alarms", al, None, (17, 18))

    def readings(self):
        """[(key, value, decimals, dpids)]: decimals is None for a plain JSON value,
        else value is an integer count. dpids names the DPs the reading came from."""
        return list(self.iter_readings())

    def _derived_phases(self):
        return [k for k in range(3) if T.row_for_key(T.DERIVED[k], self.layout) is None]

    def derived_keys(self):
        return [T.DERIVED[k] for k in self._derived_phases()]

    def values(self):
        """The state object as Python values (for tools and tests; the device writes
        JSON text with state_json, which never goes through floats)."""
        out = {}
        for key, v, dec, _ in self.readings():
            out[key] = _num(v, dec) if dec is not None else v
        if self.dps:
            out["warnings"] = self.warnings()
        return out

    def state_parts(self):
        """The state object as pieces of JSON text, numbers written exactly from their
        counts (never through floats), for writing to a socket piece by piece."""
        sep = "{"
        for key, v, dec, _ in self.iter_readings():
            # keys are identifiers from the table: no escaping needed
            yield '%s"%s":%s' % (sep, key, spm02.fmt(v, dec) if dec is not None else json.dumps(v))
            sep = ","
        if self.dps:
            yield sep + '"warnings":'
            yield json.dumps(self.warnings())
            sep = ","
        yield "}" if sep == "," else "{}"

    def state_json(self):
        """The state object as one JSON text (the MQTT payload)."""
        return "".join(self.state_parts())

    # --- plausibility --------------------------------------------------------

    def warnings(self):
        """Readings that contradict physics, naming the DPs involved. On this meter
        they almost always mean the wrong DP layout."""
        out = []
        total = 0
        total_ids = []
        complete = True
        for k in range(3):
            (v, i, p), ids = self.phase_counts(k)
            if p is None:
                complete = False
            else:
                total += p
                total_ids.append(ids[2])
            if v is None or i is None or p is None:
                continue
            va = v * abs(i)  # in 0.0001 VA
            if abs(p) * 10000 > va * 105 // 100 + 50000:
                out.append("phase %s: power %d W is more than voltage x current %s VA (DP %s)"
                           % (PHASES[k].upper(), p, spm02.fmt(va // 10000, 0), _ids(ids)))
            if abs(i) > 0 and not (800 <= v <= 3000):
                out.append("phase %s: voltage %s V outside 80..300 V with current flowing (DP %s)"
                           % (PHASES[k].upper(), spm02.fmt(v, 1), _ids(ids[:2])))
        tp = self._count(T.dpid_for_key("power", self.layout))
        if complete and tp is not None:
            if abs(total - tp) > max(20, abs(tp) // 20):
                out.append("phase powers add up to %d W but total power is %d W (DP %s)"
                           % (total, tp, _ids(total_ids + [29])))
        for r in T.rows(self.layout):
            if r[2].startswith("power_factor"):
                c = self._count(r[0])
                if c is not None and not (-100 <= c <= 100):
                    out.append("%s %s outside -1..1 (DP %d)" % (r[2], spm02.fmt(c, 2), r[0]))
        if self.setting != "auto":
            ev = self.evidence()
            if ev and ev[0] != self.layout:
                out.append("layout forced to %s but the DPs say %s: %s"
                           % (self.setting, T.LAYOUTS[ev[0]], ev[1]))
        return out

    # --- every DP seen -------------------------------------------------------

    def dp_list(self, now):
        """[{id, type, hex, value, key, age_s[, scaled, unit]}] of every DP the meter
        sent, mapped or not. "scaled" is (count, decimals): see dps_json."""
        out = []
        for dpid in sorted(self.dps):
            d = self.dps[dpid]
            r = T.row(dpid, self.layout)
            v = d.value()
            if not isinstance(v, (int, str)):
                v = d.hex()
            e = {"id": dpid, "type": TYPE_NAMES[d.type] if d.type < 6 else str(d.type),
                 "hex": d.hex(), "value": v, "key": r[2] if r else None,
                 "age_s": ticks_diff(now, d.t) // 1000}
            if r and isinstance(v, int) and d.type == T_VALUE:
                e["scaled"] = (v, r[4])
                e["unit"] = r[5]
            out.append(e)
        return out

    def dps_parts(self, now):
        """dp_list as pieces of JSON text: "[", one object per DP, "]"."""
        sep = "["
        for dpid in sorted(self.dps):
            d = self.dps[dpid]
            r = T.row(dpid, self.layout)
            v = d.value()
            if isinstance(v, int):
                val = "%d" % v
            elif isinstance(v, str):
                val = json.dumps(v)
            else:
                val = '"%s"' % d.hex()
            extra = ""
            if r and isinstance(v, int) and d.type == T_VALUE:
                extra = ', "scaled": %s, "unit": "%s"' % (spm02.fmt(v, r[4]), r[5])
            yield '%s{"id": %d, "type": "%s", "hex": "%s", "value": %s, "key": %s, "age_s": %d%s}' % (
                sep, dpid, TYPE_NAMES[d.type] if d.type < 6 else d.type, d.hex(), val,
                '"%s"' % r[2] if r else "null", ticks_diff(now, d.t) // 1000, extra)
            sep = ", "
        yield "]" if sep == ", " else "[]"

    def dps_json(self, now):
        return "".join(self.dps_parts(now))

# Why a layout was chosen: kind << 16 | the DP that decided it
WHY_DEFAULT = const(0)
WHY_FORCED = const(1)
WHY_HINT_V2 = const(2)
WHY_HINT_CLOUD = const(3)
WHY_HIGH = const(4)
WHY_V2 = const(5)
WHY_CLOUD = const(6)
_WHY_LAYOUT = (T.V2, None, T.V2, T.CLOUD, T.CLOUD, T.V2, T.CLOUD)


def _reason(why, product_key):
    kind = why >> 16
    d = why & 0xFFFF
    if kind == WHY_HIGH:
        return "DP %d seen: only the cloud layout has DPs above 110" % d
    if kind == WHY_V2 or kind == WHY_CLOUD:
        return ("DP %d, %d, %d equal the voltage, current and power inside raw DP %d"
                % (d, d + 1, d + 2, 6 + (d - 102) // 3 if kind == WHY_V2 else 6 + (d - 103) // 9))
    if kind == WHY_HINT_V2 or kind == WHY_HINT_CLOUD:
        return "product key %s (a hint until the DPs confirm it)" % product_key
    if kind == WHY_FORCED:
        return "forced by config"
    return "default: no evidence yet"


def _near(a, b):
    return abs(a - b) <= max(2, abs(b) // 50)


def _ids(ids):
    seen = []
    for i in ids:
        if i is not None and i not in seen:
            seen.append(i)
    return ", ".join(str(i) for i in seen)


def _num(count, dec):
    """An exact JSON number: an int when decimals is 0, else the float whose repr is
    the exact decimal text (float('231.7') prints as 231.7)."""
    if not dec:
        return count
    return float(spm02.fmt(count, dec))
