# What runs once at a start: the config read as boot reads it, update mode's flag taken,
# the code loaded before the long-lived objects, the App made. Borrowed by app.main only
# while it does that.
import gc
import os

from firmware import board, log
from firmware.app import UPDATE_FLAG
from firmware.borrow import borrow


def _take(path):
    """Whether the file is there; it is removed."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def _load_config(path):
    # A missing, corrupt or half-written config gives the defaults and setup mode. In a
    # function of its own, so that nothing keeps the portal's code once it returns.
    with borrow("firmware.portal", "firmware.config", "firmware.syslog", "files", "tz", "units") as portal:
        return portal.load_config(path)


def app(App, config_path, page_path, ota):
    """The App this boot runs (None: safe mode), from the config as boot reads it."""
    cfg, warnings, setup = _load_config(config_path)
    log.configure(cfg["log"]["level"])
    log.info("spm02 firmware %s starting as %s", App.version, cfg["name"])
    update_mode = _take(config_path[:config_path.rfind("/") + 1] + UPDATE_FLAG)
    if cfg["mqtt"]["host"] and not update_mode:
        # Load code before the long-lived objects and compact: code loaded later, between
        # live data, leaves the heap in holes too small for the next request.
        from umqtt import simple  # noqa: F401
    gc.collect()
    if board.ESP32:
        from firmware import esp32
        if esp32.safe_mode(cfg["board"]["button"]):
            log.warn("safe mode (button held at boot): firmware not started, the REPL is free")
            return None
    return App(cfg, warnings, page_path, config_path, setup, ota, update_mode)
