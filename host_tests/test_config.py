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
