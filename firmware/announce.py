# Home Assistant discovery over MQTT: the device message (lib/discovery.py builds it), the
# status page's address in it, and the move of an earlier version's per-entity configs.
# Loaded only while an announcement or an old config is handled.
import asyncio
from micropython import const

from firmware import log

LEGACY_MAX = const(80)  # more than any version announced


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


async def send(q, m):
    """The device-based discovery message: every entity of the meter's shape, those of
    another layout or shape (phases a single-phase meter does not have) as removals.
    Then the per-entity configs of earlier versions are cleared."""
    import discovery  # here, not at the top: an old config needs none of it
    q._disc_due = False
    app = q.app
    args = (m.layout, m.user, m.shape, q.node, q.base, app.cfg["name"], app.version, page_url(app),
            app.wifi is not None)
    q.publish_parts("%s/device/%s/config" % (q.prefix, q.node), lambda: discovery.device_parts(*args), True)
    q._disc_shape = m.shape
    legacy = q._legacy
    if legacy is not None:
        for topic in legacy:
            q.client.publish(topic, b"", True)
            await asyncio.sleep_ms(0)  # let the UART tasks run between publishes
        if legacy:
            log.info("mqtt: %d per-entity configs of an earlier version migrated and cleared", len(legacy))
        q._legacy = None
        if hasattr(q.client, "unsubscribe"):  # umqtt.simple 1.7 has it, 1.3.4 not: then ignored
            q.client.unsubscribe(q.prefix + "/+/" + q.node + "/+/config")
    log.info("mqtt: discovery sent")


def old_config(q, topic, msg):
    """A per-entity config an earlier version left: tell Home Assistant it moves to the
    device message (so the entity and its history stay), clear it after that message."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[1] == "device" or not msg or bytes(msg[:12]) == b'{"migrate_di':
        return  # ours: the device message, our migration notes and clears coming back
    if q._legacy is not None and topic not in q._legacy and len(q._legacy) < LEGACY_MAX:
        q._legacy.append(topic)
        q.client.publish(topic, b'{"migrate_discovery": true}', True)
