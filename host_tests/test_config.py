# config.json parsing: defaults for what is missing, a warning and the default for what is
# wrong, never an exception. Runs under pytest and in the MicroPython unix port.
from firmware import config

PORTABLE = True


def test_no_file_gives_defaults():
    cfg, w = config.parse(None)
    assert w == []
    assert cfg["name"] == "spm02" and cfg["layout"] == "auto" and cfg["wifi_state"] == 4
    assert cfg["uart"] == {"id": 1, "tx": 21, "rx": 20, "baudrate": 9600, "url": ""}
    assert cfg["mqtt"]["base_topic"] == "spm02" and cfg["http"]["port"] == 80


def test_missing_keys_take_defaults_and_base_topic_follows_name():
    cfg, w = config.parse('{"name": "garage", "mqtt": {"host": "10.0.0.5"}}')
    assert w == [] and cfg["mqtt"] == dict(config.DEFAULTS["mqtt"], host="10.0.0.5", base_topic="garage")


def test_bad_values_warn_and_fall_back():
    cfg, w = config.parse('{"layout": "v3", "uart": {"baudrate": 1234}, "http": {"port": 70000},'
                          ' "mqtt": {"port": "1883", "password": 5}, "name": "bad name", "wifi_state": 9,'
                          ' "bogus": 1, "wifi": []}')
    assert cfg["layout"] == "auto" and cfg["uart"]["baudrate"] == 9600 and cfg["http"]["port"] == 80
    assert cfg["mqtt"]["port"] == 1883 and cfg["name"] == "spm02" and cfg["wifi_state"] == 4
    text = "\n".join(w)
    for what in ("layout", "uart.baudrate", "http.port", "mqtt.port", "mqtt.password", "name",
                 "wifi_state", "bogus: unknown", "wifi: must be an object"):
        assert what in text, what
    assert len(w) == 9


def test_not_json():
    cfg, w = config.parse("{not json")
    assert cfg["name"] == "spm02" and "not valid JSON" in w[0]


def test_secrets_never_in_warnings():
    cfg, w = config.parse('{"mqtt": {"password": 12345678}, "wifi": {"password": ["hunter2"]}}')
    assert "12345678" not in "".join(w) and "hunter2" not in "".join(w)


def test_base_topic_without_wildcards():
    cfg, w = config.parse('{"mqtt": {"base_topic": "meters/#"}}')
    assert cfg["mqtt"]["base_topic"] == "spm02" and "mqtt.base_topic" in w[0]


def test_log_settings():
    cfg, w = config.parse('{"log": {"syslog": "logs.lan:514", "level": "debug"}}')
    assert w == [] and cfg["log"] == {"syslog": "logs.lan:514", "level": "debug"}
    assert config.parse(None)[0]["log"] == {"syslog": "", "level": "info"}
    for bad in ("nonsense", "logs.lan:0", "logs.lan:65536", "logs.lan:x", ":514", "a b:514"):
        cfg, w = config.parse('{"log": {"syslog": "%s"}}' % bad)
        assert cfg["log"]["syslog"] == "" and len(w) == 1 and w[0].startswith("log.syslog"), (bad, w)
    cfg, w = config.parse('{"log": {"level": "verbose"}}')
    assert cfg["log"]["level"] == "info" and "log.level" in w[0]


def test_mcu_poll_s():
    cfg, w = config.parse(None)
    assert cfg["mcu"] == {"poll_s": 30} and w == []
    cfg, w = config.parse('{"mcu": {"poll_s": 0}, "layout": "spm01"}')
    assert cfg["mcu"]["poll_s"] == 0 and cfg["layout"] == "spm01" and w == []
    for bad in ("-1", "3601", '"30"', "true", "2.5"):
        cfg, w = config.parse('{"mcu": {"poll_s": %s}}' % bad)
        assert cfg["mcu"]["poll_s"] == 30 and len(w) == 1 and w[0].startswith("mcu.poll_s"), (bad, w)


def test_dps_map_becomes_table_rows():
    from dptable import ANY
    from tuya import T_VALUE, T_BOOL
    cfg, w = config.parse('{"dps": {"111": {"key": "power", "type": "value", "decimals": 0, "unit": "W"},'
                          ' "5": {"key": "relay", "type": "bool"}, "120": {"key": "leak_a", "decimals": 3,'
                          ' "unit": "A"}}}')
    assert w == []
    assert cfg["dps"] == ((5, ANY, "relay", T_BOOL, 0, "", 0), (111, ANY, "power", T_VALUE, 0, "W", 0),
                          (120, ANY, "leak_a", T_VALUE, 3, "A", 0))
    assert config.parse(None)[0]["dps"] == ()


def test_bad_dps_entries_are_dropped_by_name_the_rest_kept():
    cfg, w = config.parse('{"dps": {"0": {"key": "a"}, "256": {"key": "b"}, "x1": {"key": "c"},'
                          ' "10": {"key": "bad key"}, "11": {"key": "warnings"}, "12": {"key": "t", "type": "float"},'
                          ' "13": {"key": "d", "decimals": 7}, "14": {"key": "e", "decimals": 1.5},'
                          ' "15": [1], "16": {"key": "ok", "unit": "degC", "color": "red"},'
                          ' "17": {"key": "ok"}, "18": {"key": "f", "decimals": true}, "19": {"type": "value"}}}')
    assert [r[0] for r in cfg["dps"]] == [16]
    text = "\n".join(w)
    for what in ("dps.0:", "dps.256:", "dps.x1:", "dps.10: key", "dps.11: key warnings",
                 "dps.12: type", "dps.13: decimals", "dps.14: decimals", "dps.15: must be an object",
                 "dps.16: unit degC", "dps.16.color: unknown", "dps.17: key ok is already taken",
                 "dps.18: decimals", "dps.19: key"):
        assert what in text, what
    for line in w:
        if not line.startswith("dps.16"):
            assert line.endswith("entry ignored"), line
    assert len(w) == 14


def test_dps_not_an_object():
    cfg, w = config.parse('{"dps": [1, 2]}')
    assert cfg["dps"] == () and len(w) == 1 and w[0].startswith("dps: must be an object")


def test_time_zone():
    cfg, w = config.parse(None)
    assert cfg["time"] == {"tz": "UTC0", "ntp": "pool.ntp.org"} and w == []
    cfg, w = config.parse('{"time": {"tz": "CET-1CEST,M3.5.0,M10.5.0/3"}}')
    assert cfg["time"]["tz"] == "CET-1CEST,M3.5.0,M10.5.0/3" and w == []
    for bad in ('"Europe/Berlin"', '"CET-1CEST,M13.1.0,M10.5.0"', '""'):
        cfg, w = config.parse('{"time": {"tz": %s}}' % bad)
        assert cfg["time"]["tz"] == "UTC0", bad
        assert len(w) == 1 and w[0].startswith("time.tz: cannot parse") and w[0].endswith("using 'UTC0'"), w
    cfg, w = config.parse('{"time": {"tz": 1}}')
    assert cfg["time"]["tz"] == "UTC0" and w[0].startswith("time.tz: expected str")


def test_day_keys_are_the_firmwares_own():
    cfg, w = config.parse('{"dps": {"111": {"key": "energy_forward_today", "unit": "kWh"}}}')
    assert cfg["dps"] == () and "firmware's own" in w[0]


def test_a_save_checks_only_what_it_sends():
    # POST /api/config of log.level: the rules of the sent paths only, so the time zone's
    # and the DP map's code (KBs of heap on a stock image) are not loaded for it
    import sys
    for m in ("tz", "firmware.dpsconfig"):
        sys.modules.pop(m, None)
    given = {"time": {"tz": "CET-1CEST,M3.5.0,M10.5.0/3"}, "log": {"level": "warn"},
             "dps": {"101": {"key": "x", "unit": "W"}}}
    assert config.errors(given, {"log": {"level": "warn"}}) == {}
    assert "tz" not in sys.modules and "firmware.dpsconfig" not in sys.modules
    # what it sends is checked as boot would; without sent, every path
    assert config.errors(dict(given, log={"level": "loud"}), {"log": {"level": "loud"}}) == \
        {"log.level": "must be debug, info, warn or error"}
    assert "time.tz" in config.errors({"time": {"tz": "no zone 9"}}) \
        and config.errors({"time": {"tz": "no zone 9"}}, {"log": {}}) == {}
