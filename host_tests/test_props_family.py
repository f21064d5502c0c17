"""Property tests of the family's decoders and layout detection (CPython + hypothesis)."""
import json

from hypothesis import HealthCheck, given, settings, strategies as st

import dptable as T
import layout as L
import commands
import spm02
from meter import Meter
from commands import encode_dp
from tuya import T_RAW, T_VALUE
import report

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u24 = st.integers(0, 0xFFFFFF)


def feed(m, recs):
    data = b"".join(encode_dp(*r) for r in recs)
    return m.dps_in(data, 0, len(data), 0)


def v0x(ver, v, mags, pf, signs):
    b = bytes((ver, 0x0F)) + v.to_bytes(2, "big") + b"".join(x.to_bytes(3, "big") for x in mags) + bytes((pf,))
    return b + (bytes((signs,)) if ver == 2 else b"")


@FAST
@given(st.integers(0, 0xFFFF), st.tuples(u24, u24, u24, u24), st.integers(0, 255), st.integers(0, 255))
def test_v02_fields_are_magnitudes_with_their_sign_bits(v, mags, pf, signs):
    i, p, q, s = mags
    want = (v, -i if signs & 1 else i, -p if signs & 2 else p, -q if signs & 4 else q, s,
            -pf if signs & 8 else pf)
    assert spm02.phase_fields(v0x(2, v, mags, pf, signs)) == want
    assert spm02.phase_fields(v0x(1, v, mags, pf, 0)) == (v, i, p, q, s, pf)  # v01: no signs


@FAST
@given(st.integers(0, 0xFFFF), st.integers(-629146, 0xFFFFF), st.integers(-629146, 0xFFFFF),
       st.sampled_from(("twos", "offset")))
def test_eight_byte_fields_both_negative_encodings(v, i, p, enc):
    # 0x19999A - |x| stays apart from the positive range while |x| <= 0x9999A (629 A, 629 kW)
    def e24(x):
        return x if x >= 0 else (0x19999A + x if enc == "offset" else x & 0xFFFFFF)
    raw = v.to_bytes(2, "big") + e24(i).to_bytes(3, "big") + e24(p).to_bytes(3, "big")
    assert spm02.phase_fields(raw) == (v, i, p, None, None, None)
    if i < 0 or p < 0:
        assert spm02.phase_encoding(raw) == enc


@FAST
@given(st.binary(max_size=40))
def test_any_raw_bytes_decode_or_are_no_phase(raw):
    f = spm02.phase_fields(raw)
    fmt = spm02.phase_format(raw, len(raw))
    assert (f is None) == (fmt == 0)
    if f is not None:
        assert len(f) == 6 and all(x is None or isinstance(x, int) for x in f)


dp_st = st.tuples(st.sampled_from([1, 2, 6, 7, 8, 9, 17, 18, 29, 50, 101] + list(range(102, 131))),
                  st.sampled_from([T_RAW, T_VALUE, 1, 3, 4, 5]), st.binary(max_size=24))


@FAST
@given(st.lists(dp_st, max_size=25), st.sampled_from(["auto", "v2", "cloud", "spm01"]))
def test_any_dps_give_a_layout_and_valid_state(dps, setting):
    m = Meter(setting)
    data = b"".join(bytes((d, t, len(v) >> 8, len(v) & 0xFF)) + v for d, t, v in dps)
    m.dps_in(data, 0, len(data), 0)
    assert m.layout in (T.V2, T.CLOUD, T.SPM01) and m.layout_reason
    state = json.loads(m.state_json())
    assert isinstance(state["warnings"], list) if dps else state == {}
    if m.layout == T.SPM01:
        assert not [k for k in state if k.endswith(("_b", "_c"))]
    json.loads(report.dps_json(m, 0))


phase_st = st.tuples(st.integers(1800, 2600), st.integers(0, 60000), st.integers(-14000, 14000))


@FAST
@given(phase_st, st.sampled_from(["raw", "values", "both"]), st.integers(0, 10 ** 6),
       st.sampled_from([7, 8] + list(range(105, 111))))
def test_single_phase_until_a_dp_of_another_phase(ph, how, rev, other):
    v, i, p = ph
    recs = [(1, T_VALUE, 5), (2, T_VALUE, rev)]
    if how != "values":
        recs.append((6, T_RAW, v.to_bytes(2, "big") + (i & 0xFFFFFF).to_bytes(3, "big")
                     + (p & 0xFFFFFF).to_bytes(3, "big")))
    if how != "raw":
        recs += [(102, T_VALUE, v), (103, T_VALUE, i), (104, T_VALUE, p)]
    m = Meter()
    feed(m, recs)
    assert m.layout == T.SPM01
    assert L.evidence(m.dps) >> 16 == L.WHY_SINGLE
    feed(m, [(other, T_RAW if other < 9 else T_VALUE,
              bytes(8) if other < 9 else 2300)])
    assert m.layout != T.SPM01


rec_st = st.tuples(st.integers(0, 255), st.integers(0, 1), st.integers(0, 0xFFFF))


@FAST
@given(st.lists(rec_st, max_size=6), st.integers(0, 0xFFFF), st.integers(5, 3600))
def test_report_interval_rewrite_changes_only_record_8(recs, th, s):
    recs = [r for r in recs if r[0] != 8]
    raw = commands.encode_alarms(recs + [(8, 1, th)])
    assert spm02.report_interval(raw, len(raw)) == th
    new = commands.set_alarm(raw, 8, threshold=s)
    assert spm02.report_interval(new, len(new)) == s
    assert spm02.alarm_records(new)[:-1] == spm02.alarm_records(raw)[:-1]
    assert "alarm_8" not in spm02.alarms(18, new)
