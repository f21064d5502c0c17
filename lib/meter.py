# The meter's state: every DP seen, kept as the raw bytes the MCU sent, and the
# readings derived from them through the DP table (and the owner's dps map), formatted
# exactly from integer counts. Which layout applies is layout.py's to say, what
# contradicts physics plausible.py's. Energy counters show what counters.py believes
# (never a bogus drop), and today/yesterday/month come from days.py once the firmware
# gives the meter one (meter.days).
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import json
from binascii import hexlify

import dptable as T
import layout as L
import counters
from counters import Counters
import plausible
import spm02
from tuya import T_VALUE, T_BOOL, dp_value


PHASES = ("a", "b", "c")
POWERS = ("power_a", "power_b", "power_c")
RAW_PHASE = T.RAW_PHASE


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
    def __init__(self, layout="auto", user=()):
        self.dps = {}
        self.seq = 0  # bumped on every change of a DP, of the layout or of the shape
        self.user = tuple(user)  # rows of the owner's dps map: they win over the table
        self.setting = layout if layout in T.LAYOUTS[1:] else "auto"
        self.layout = T.V2
        self._why = L.WHY_DEFAULT << 16
        self.product_key = None
        self.neg_encoding = None  # seen in a raw phase DP: "offset" or "twos"
        self.bad_records = 0
        # What discovery announces depends on: the layout | dptable's X_* extras
        self.shape = T.V2
        # Every DP that is an energy counter in some layout: the rule runs on each, and the
        # readings of the layout in force show what it believes (DP 109 is current_c on v2)
        ids = []
        for rows in (self.user, T.rows()):
            for r in rows:
                if r[5] == "kWh" and r[3] == T_VALUE and r[0] not in ids:
                    ids.append(r[0])
        self.counters = Counters(ids)
        self.days = None  # days.Days, fed by the firmware's clock
        if self.setting != "auto":
            self.layout = T.LAYOUTS.index(self.setting)
            self._why = L.WHY_FORCED << 16
            self.shape = self.layout

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
                return self._count(d)  # the same count again is a report too
        else:
            d = Dp(dpid, dptype, n)
            d.t = now
            self.dps[dpid] = d
        raw = d.raw
        for j in range(n):
            raw[j] = buf[start + j]
        self.seq += 1
        d.seq = self.seq
        if n == 8 and dpid in RAW_PHASE:
            e = spm02.phase_encoding(raw)
            if e:
                self.neg_encoding = e
        self._count(d)
        return True

    def _count(self, d):
        # an energy counter's report through the rule: True when what is shown changed
        i = self.counters.slot(d.id)
        if i < 0 or d.type != T_VALUE or d.n != 4:
            return False
        unit = T.field(d.id, None, self.layout, self.user, 5)
        if self.counters.report(i, d.value(), unit == "kWh"):
            self.seq += 1
            return True
        return False

    def product(self, key):
        self.product_key = key
        self._detect()

    # --- layout --------------------------------------------------------------

    def _detect(self):
        """After every changed report: the layout, and the extras discovery depends on.
        Allocates nothing."""
        if self.setting == "auto":
            why = L.choose(self._why, L.evidence(self.dps, self.user), self.product_key)
            if why != self._why:
                self._why = why
                self.layout = L.layout_of(why)
        ext = 0
        for k in range(T.phases(self.layout)):
            d = L.raw_phase(self.dps, k, self.user)
            if d is not None and d.n != 8:
                ext |= T.X_PHASE << k
        for i in range(len(T.SPM01_MAYBE)):
            if T.SPM01_MAYBE[i] in self.dps:
                ext |= T.X_SEEN << i
        d = self.dps.get(T.REPORT_DP)
        if d is not None and not self._user_has(T.REPORT_DP) \
                and spm02.report_interval(d.raw, d.n) is not None:
            ext |= T.X_REPORT
        shape = self.layout | ext
        if shape != self.shape:
            self.shape = shape
            self.seq += 1

    @property
    def layout_reason(self):
        from reasons import reason  # the firmware borrows it (report.py): loaded only then
        return reason(self._why, self.product_key, len(self.user))

    def layout_name(self):
        return T.LAYOUTS[self.layout]

    def phases(self):
        return T.phases(self.layout)

    # --- the table, with the owner's map -------------------------------------

    def _user_has(self, dpid):
        for r in self.user:
            if r[0] == dpid:
                return True
        return False

    def row(self, dpid):
        return T.row(dpid, self.layout, self.user)

    def dpid_for_key(self, key):
        return T.field(-1, key, self.layout, self.user, 0)  # builds no row: every report asks

    def unit_of(self, key):
        return T.unit_of(key, self.layout, self.user)

    def count(self, dpid):
        """The integer a 4-byte value DP holds, or None."""
        d = self.dps.get(dpid)
        if d is None or d.type != T_VALUE or d.n != 4:
            return None
        return d.value()

    # --- readings ------------------------------------------------------------

    def phase_counts(self, k):
        """(V 0.1 V, I 0.001 A, P W) of phase k with the DP ids they came from: the
        layout's own DPs first, else the raw phase DP. Missing parts are None."""
        p = PHASES[k]
        out = []
        ids = []
        raw = L.raw_phase(self.dps, k, self.user)
        for j in range(3):
            dpid = self.dpid_for_key(T.PHASE_FIELDS[j][0] + p)
            d = self.dps.get(dpid) if dpid is not None else None
            if d is not None and d.type == T_VALUE:
                out.append(d.value())
                ids.append(d.id)
            elif raw is not None:
                out.append(spm02.phase_field(raw.raw, raw.n, j))
                ids.append(raw.id)
            else:
                out.append(None)
                ids.append(None)
        return out, ids

    def phase_power(self, k):
        """Phase k's active power in W as phase_counts has it, or None; allocates nothing
        (the power history samples it at every report)."""
        dpid = self.dpid_for_key(POWERS[k])
        d = self.dps.get(dpid) if dpid is not None else None
        if d is not None and d.type == T_VALUE:
            return d.value()
        raw = L.raw_phase(self.dps, k, self.user)
        return spm02.phase_field(raw.raw, raw.n, 2) if raw is not None else None

    def iter_readings(self):
        """(key, value, decimals, dpids) one by one: decimals is None for a plain JSON value,
        else value is an integer count. dpids names the DPs the reading came from."""
        have = 0  # bit 6 * phase + field of the per-phase readings given (no set: no garbage)
        ri = False  # report_interval given
        lay = self.layout
        nph = T.phases(lay)
        user = self.user
        for n in T.walk(lay, user):  # the rows' fields read in place: no tuple per row
            flags = T.at(n, 6, user)
            if flags & (T.F_HIDDEN | T.F_PHASE | T.F_ALARMS):
                continue  # phase DPs feed the per-phase readings, alarms are merged below
            key = T.at(n, 2, user)
            if nph == 1 and len(key) > 2 and key[-2] == "_" and key[-1] in "bc":
                continue  # a single-phase meter has no phase B or C
            dpid = T.at(n, 0, user)
            d = self.dps.get(dpid)
            if d is None:
                continue
            v = d.value()
            dec = T.at(n, 4, user)
            if T.at(n, 5, user) == "kWh" and d.type == T_VALUE:
                v = self.counters.believed(self.counters.slot(dpid))
                if v is None:
                    continue
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
            have |= _phase_bit(key)
            ri = ri or key == "report_interval"
            yield (key, v, dec, (dpid,))
        # Per-phase readings from the raw phase DPs where the layout's own DPs are missing
        for k in range(nph):
            raw = L.raw_phase(self.dps, k, self.user)
            if raw is None:
                continue
            for j in range(6):
                if have >> (6 * k + j) & 1:
                    continue
                v = spm02.phase_field(raw.raw, raw.n, j)
                if v is not None:
                    have |= 1 << (6 * k + j)
                    yield (T.PHASE_FIELDS[j][0] + PHASES[k], v, T.PHASE_FIELDS[j][1], (raw.id,))
        # Per-phase power factor where neither the layout nor the meter gives one: P / (V * I)
        for k in self._derived_phases(have):
            (v, i, p), ids = self.phase_counts(k)
            if v and i and p is not None:
                # P [W] / (V [0.1 V] * I [0.001 A]) = P * 10000 / (v * i)
                c = spm02.ratio(p * 10000, v * abs(i), T.DERIVED_DECIMALS)
                yield (T.DERIVED[k], c, T.DERIVED_DECIMALS, tuple(ids))
        al = {}
        for dpid in (17, 18):
            d = self.dps.get(dpid)
            if d is not None and not self._user_has(dpid):
                al.update(spm02.alarms(dpid, d.raw))
                if dpid == T.REPORT_DP and not ri:
                    ri = spm02.report_interval(d.raw, d.n)
                    if ri is not None:
                        yield ("report_interval", ri, 0, (dpid,))
        if al:
            yield ("alarms", al, None, (17, 18))
        dy = self.days
        if dy is not None:
            f = self.mono(0)
            r = self.mono(1)
            for j in range(6):
                v = dy.value(j, f, r)
                if v is not None:
                    yield (T.DAY_KEYS[j], v, 2, (self.dpid_for_key(T.ENERGY_KEYS[j & 1]),))

    def mono(self, k):
        """energy_forward (k 0) or energy_reverse (1) as a count that never goes down
        (counters.py), or None before the meter's first report since boot."""
        dpid = self.dpid_for_key(T.ENERGY_KEYS[k])
        return None if dpid is None else self.counters.mono(self.counters.slot(dpid))

    def readings(self):
        """[(key, value, decimals, dpids)]: decimals is None for a plain JSON value,
        else value is an integer count. dpids names the DPs the reading came from."""
        return list(self.iter_readings())

    def _derived_phases(self, have=0):
        out = []
        for k in range(T.phases(self.layout)):
            key = T.DERIVED[k]
            if have >> (6 * k + 5) & 1:  # power_factor_<phase> given (iter_readings' bits)
                continue
            if self.dpid_for_key(key) is not None:
                continue
            raw = L.raw_phase(self.dps, k, self.user)
            if raw is not None and raw.n != 8:
                continue  # the v01/v02 format carries the meter's own power factor
            out.append(k)
        return out

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
            # keys are identifiers from the table or the validated dps map: no escaping
            if dec is not None:
                yield '%s"%s":%s' % (sep, key, spm02.fmt(v, dec))
            else:
                yield '%s"%s":' % (sep, key)
                for part in json_parts(v):  # the alarms: a dict of dicts, in small pieces
                    yield part
            sep = ","
        if self.dps:
            yield sep + '"warnings":'
            yield json.dumps(self.warnings())
            sep = ","
        yield "}" if sep == "," else "{}"

    def state_json(self):
        """The state object as one JSON text (the MQTT payload)."""
        return "".join(self.state_parts())

    def warnings(self):
        """Readings that contradict physics, naming the DPs involved, and energy counters
        that went down and are held."""
        out = plausible.warnings(self)
        c = self.counters
        for i in range(len(c.ids)):
            r = self.row(c.ids[i]) if c.held[i] else None
            if r is not None and r[5] == "kWh":
                out.append("%s (DP %d) went down from %s to %s kWh: held until %d reports in a row "
                           "confirm a new cycle" % (r[2], r[0], spm02.fmt(c.value[i], r[4]),
                                                    spm02.fmt(c.low[i], r[4]), counters.HOLD))
        return out


def json_parts(v):
    """v as JSON text in pieces: a dict key by key (its values whole), so that no piece
    is bigger than one of its values (a fragmented heap has room for small ones)."""
    if not isinstance(v, dict):
        yield json.dumps(v)
        return
    sep = "{"
    for k in v:
        yield "%s%s:%s" % (sep, json.dumps(k), json.dumps(v[k]))
        sep = ","
    yield "}" if sep == "," else "{}"


def _phase_bit(key):
    """iter_readings' bit of a per-phase reading (PHASE_FIELDS j of phase k: 6 * k + j),
    0 for any other key. Compares in place: no slices."""
    n = len(key)
    if n > 2 and key[n - 2] == "_":
        k = "abc".find(key[n - 1])
        if k >= 0:
            for j in range(6):
                p = T.PHASE_FIELDS[j][0]
                if len(p) == n - 1 and key.startswith(p):
                    return 1 << (6 * k + j)
    return 0


def _num(count, dec):
    """An exact JSON number: an int when decimals is 0, else the float whose repr is
    the exact decimal text (float('231.7') prints as 231.7)."""
    if not dec:
        return count
    return float(spm02.fmt(count, dec))
