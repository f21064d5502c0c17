# Plausibility: readings that contradict physics, naming the DPs involved. On this
# family they almost always mean the wrong DP layout (or a wrong entry in the owner's
# dps map), so the page shows them in red and Home Assistant gets them as a sensor.
import dptable as T
import layout as L
import spm02


def warnings(m):
    """The warnings of a meter.Meter's current state, as a list of texts."""
    out = []
    total = 0
    total_ids = []
    complete = True
    for k in range(T.phases(m.layout)):
        (v, i, p), ids = m.phase_counts(k)
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
                       % ("ABC"[k], p, spm02.fmt(va // 10000, 0), _ids(ids)))
        if abs(i) > 0 and not (800 <= v <= 3000):
            out.append("phase %s: voltage %s V outside 80..300 V with current flowing (DP %s)"
                       % ("ABC"[k], spm02.fmt(v, 1), _ids(ids[:2])))
    tpid = m.dpid_for_key("power")
    tp = m.count(tpid) if tpid is not None else None
    if complete and tp is not None:
        if abs(total - tp) > max(20, abs(tp) // 20):
            out.append("phase powers add up to %d W but total power is %d W (DP %s)"
                       % (total, tp, _ids(total_ids + [tpid])))
    user = m.user
    for n in T.walk(m.layout, user):
        key = T.at(n, 2, user)
        if key.startswith("power_factor"):
            dpid = T.at(n, 0, user)
            dec = T.at(n, 4, user)
            c = m.count(dpid)
            if c is not None and not (-10 ** dec <= c <= 10 ** dec):
                out.append("%s %s outside -1..1 (DP %d)" % (key, spm02.fmt(c, dec), dpid))
    if m.setting != "auto":
        why = L.evidence(m.dps, m.user)
        lay = L.layout_of(why) if why else None
        if why >> 16 == L.WHY_THREE and m.layout != T.SPM01:
            lay = None  # "more than one phase" contradicts only the single-phase layout
        if lay is not None and lay != m.layout:
            from reasons import reason  # (a config mistake: it may stay loaded then)
            out.append("layout forced to %s but the DPs say %s: %s"
                       % (m.setting, T.LAYOUTS[lay], reason(why)))
    return out


def _ids(ids):
    seen = []
    for i in ids:
        if i is not None and i not in seen:
            seen.append(i)
    return ", ".join(str(i) for i in seen)
