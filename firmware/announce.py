# Home Assistant discovery over MQTT: the device message (lib/discovery.py builds it) with
# the status page's address in it. Loaded only while an announcement is made; the move of
# an earlier version's per-entity configs is firmware/mqttconn.py's, loaded after this.
import discovery  # with this module: no room for either, and the announcement waits for it (mqtt._announce)
from firmware import log


def page_url(app):
    """The status page's address ("" while not known), for Home Assistant's device page."""
    cfg = app.cfg["http"]
    host = cfg["host"]
    sta = app.wifi.sta if app.wifi is not None else None
    if sta is not None:
        try:
            host = sta.ifconfig()[0]
        except Exception:
            pass
    if host in ("0.0.0.0", ""):
        return ""
    port = cfg["port"]
    return "http://%s/" % host if port == 80 else "http://%s:%d/" % (host, port)


def send(q, m):
    """The device-based discovery message: every entity of the meter's shape, those of
    another layout or shape (phases a single-phase meter does not have) as removals.
    The per-entity configs of earlier versions are cleared after it (mqttconn.clear_legacy)."""
    q._disc_due = False
    app = q.app
    args = (m.layout, m.user, m.shape, q.node, q.base, app.cfg["name"], app.version, page_url(app),
            app.wifi is not None)
    q.publish_parts("%s/device/%s/config" % (q.prefix, q.node), lambda: discovery.device_parts(*args), True)
    q._disc_shape = m.shape
    if q._legacy is None:  # else after the old configs' clearing
        log.info("mqtt: discovery sent")
