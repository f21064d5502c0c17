# The only module that knows what it runs on: an ESP32 (machine.UART, network) or
# the host (the UART is a TCP connection to uart.url, no Wi-Fi). Everything else
# gets streams and a clock from here.
import sys
import time

import asyncio

ESP32 = sys.platform == "esp32"
# test hook, host only: SPM02_NO_CLOCK=1 plays an ESP32 before NTP
NO_CLOCK = not ESP32 and __import__("os").getenv("SPM02_NO_CLOCK") == "1"

# Test hook, host only (never on an ESP32): SPM02_CLOCK="<factor>,<simulated unix start>,<real
# unix start>" makes unix_time() run <factor> times faster from that start (make soak: a month
# in half an hour). Timers in ticks_ms (heartbeats, keepalive, timeouts) stay in real time.
SPEED = 1
_CLOCK = None
if not ESP32:
    import os
    _c = os.getenv("SPM02_CLOCK") if hasattr(os, "getenv") else None
    if _c:
        _c = _c.split(",")
        SPEED = int(_c[0])
        _CLOCK = (float(_c[1]), float(_c[2]))
    del os, _c


def ticks():
    return time.ticks_ms()


def parse_url(url):
    """("127.0.0.1", 7000) from "tcp://127.0.0.1:7000"."""
    rest = url[6:] if url.startswith("tcp://") else url
    host, _, port = rest.rpartition(":")
    return host or "127.0.0.1", int(port)


async def open_uart(ucfg):
    """(reader, writer) of the line to the meter's MCU."""
    if ucfg["url"]:
        host, port = parse_url(ucfg["url"])
        return await asyncio.open_connection(host, port)
    if ESP32:
        from firmware import esp32
        return esp32.open_uart(ucfg)
    raise OSError("no UART here: set uart.url to tcp://host:port")


def clock_valid():
    # Before NTP an ESP32 thinks it is 2000; the host always has the time.
    return time.localtime()[0] >= 2024 and not NO_CLOCK


def unix_time():
    """Unix time in whole seconds, or None while the clock is not set (an ESP32 before
    NTP). The ESP32 port counts from 2000, the unix port from 1970."""
    t = int(time.time())
    if _CLOCK is not None:
        t = int(_CLOCK[0] + (time.time() - _CLOCK[1]) * SPEED)
    if ESP32:
        t += 946684800
    return t if t >= 1704067200 and not NO_CLOCK else None  # 2024-01-01


def clock():
    """Local time for the MCU's 0x1C question, or None when not known."""
    if not clock_valid():
        return None
    t = time.localtime(unix_time()) if _CLOCK is not None else time.localtime()
    return (t[0], t[1], t[2], t[3], t[4], t[5], t[6] + 1)


def unique_id():
    """A stable id for MQTT client id and Home Assistant unique ids."""
    if ESP32:
        import machine
        return "".join("%02x" % b for b in machine.unique_id()[-3:])
    return ""
