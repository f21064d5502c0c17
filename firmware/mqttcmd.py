# A command over MQTT (B/cmd/<name>): run by lib/commands.py like one over HTTP, the
# outcome logged and counted; a bad payload is logged and ignored, never the session's
# end. Loaded only while a command is handled.
import commands
from firmware import log


def run(q, name, msg):
    try:
        name = bytes(name).decode()
    except Exception:  # not UTF-8: not one of ours
        q.commands_bad += 1
        return
    try:
        res = commands.run(q.app.mcu, name, msg)
        q.commands_ok += 1
        log.info("mqtt: cmd %s: %s", name, res)
        q.app.command_done(name)
    except KeyError:
        q.commands_bad += 1
        log.warn("mqtt: unknown command %s ignored", name)
    except ValueError as e:
        q.commands_bad += 1
        log.warn("mqtt: cmd %s: bad payload ignored: %s", name, e)
    except Exception as e:  # whatever else a payload provokes: logged, never the session
        q.commands_bad += 1
        log.error("mqtt: cmd %s failed: %r", name, e)
