# Home Assistant MQTT discovery, derived from the DP table: one entity per reading
# of the layout, plus buttons and controls for the commands.
import dptable as T


def name_of(key):
    """"voltage_a" -> "Voltage A", "energy_forward" -> "Energy forward"."""
    parts = key.split("_")
    if len(parts) > 1 and parts[-1] in ("a", "b", "c"):
        parts[-1] = parts[-1].upper()
    s = " ".join(parts)
    return s[0].upper() + s[1:]


def sensor_keys(layout):
    """The keys of the readings a layout can have, in table order."""
    out = []
    for r in T.rows(layout):
        if not r[6] & (T.F_HIDDEN | T.F_PHASE | T.F_ALARMS) and r[2] != "locating" \
                and r[2] != "report_interval":
            out.append(r[2])
    for k in T.DERIVED:
        if T.row_for_key(k, layout) is None:
            out.append(k)
    return out


def entities(layout):
    """(component, object_id, {config without topics and device}) for every entity."""
    for key in sensor_keys(layout):
        c = {"name": name_of(key)}
        if key == "faults":
            c["value_template"] = "{{ value_json.faults | join(', ') if value_json.faults else 'none' }}"
            c["icon"] = "mdi:alert"
        elif key == "device_id":
            c["value_template"] = "{{ value_json.device_id }}"
            c["entity_category"] = "diagnostic"
        else:
            # get(): a reading not there yet (a derived power factor at 0 A) renders None,
            # which Home Assistant shows as unknown instead of logging a template error
            c["value_template"] = "{{ value_json.get('%s') }}" % key
            unit = T.unit_of(key, layout)
            dc, sc, _ = T.UNITS[unit]
            if unit:
                c["unit_of_measurement"] = unit
            if dc:
                c["device_class"] = dc
            if sc:
                c["state_class"] = sc
        yield "sensor", key, c
    yield "sensor", "warnings", {"name": "Plausibility warnings", "entity_category": "diagnostic",
                                 "icon": "mdi:alert-circle-outline",
                                 "value_template": "{{ value_json.warnings | length }}",
                                 "json_attributes_topic": "~/state",
                                 "json_attributes_template": "{{ {'warnings': value_json.warnings} | tojson }}"}
    for cmd, name, icon in (("query_state", "Query state", "mdi:database-refresh"),
                            ("refresh", "Refresh", "mdi:refresh"),
                            ("clear_energy", "Clear energy counters", "mdi:delete-forever")):
        yield "button", cmd, {"name": name, "icon": icon, "command_topic": "~/cmd/" + cmd,
                              "payload_press": "PRESS"}
    yield "switch", "locate", {"name": "Locate", "icon": "mdi:map-marker-radius",
                               "command_topic": "~/cmd/locate", "payload_on": "ON", "payload_off": "OFF",
                               "value_template": "{{ 'ON' if value_json.locating else 'OFF' }}"}
    if T.row_for_key("report_interval", layout) is not None:
        yield "number", "report_interval", {"name": "Report interval", "min": 225, "max": 3600, "step": 1,
                                            "unit_of_measurement": "s", "entity_category": "config",
                                            "command_topic": "~/cmd/report_interval",
                                            "value_template": "{{ value_json.report_interval }}"}


def all_object_ids():
    """Every (component, object_id) any layout announces: to remove the ones a layout
    change leaves behind."""
    seen = []
    for lay in (T.V2, T.CLOUD):
        for comp, oid, _ in entities(lay):
            if (comp, oid) not in seen:
                seen.append((comp, oid))
    return seen


def config(comp, oid, c, node, base, device):
    """The whole config object of one entity."""
    c["~"] = base
    c["unique_id"] = node + "_" + oid
    c["availability_topic"] = "~/availability"
    if comp != "button":
        c["state_topic"] = "~/state"
    c["device"] = device
    return c

