"""Home Assistant side of `cargo xtask ha-check` (runs in Home Assistant's own venv).

Subcommands (the Rust xtask, xtask/src/ha_check.rs, calls them in this order):

  setup URL BROKER_PORT TOKEN_FILE   onboarding (first user) and the MQTT config flow, over REST
  watch URL TOKEN_FILE BROKER_PORT OUT   while the demo runs: records every state Home Assistant
                                     shows for the gate's entities, and expands device-based
                                     discovery for Home Assistant releases before 2024.11
  check OUT HA_LOG                   asserts entities and the states they went through

Only the standard library, `requests` and `paho-mqtt` (both installed with Home Assistant).
"""

import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
import requests

CLIENT_ID = "http://ha-check.invalid/"
DISCOVERY_PREFIX = "homeassistant"


def setup(url, broker_port, token_file):
    response = requests.post(
        f"{url}/api/onboarding/users",
        json={
            "client_id": CLIENT_ID,
            "name": "ha-check",
            "username": "ha-check",
            "password": "ha-check-password",
            "language": "en",
        },
        timeout=30,
    )
    response.raise_for_status()
    code = response.json()["auth_code"]
    response = requests.post(
        f"{url}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
        timeout=30,
    )
    response.raise_for_status()
    token = response.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    flow = requests.post(
        f"{url}/api/config/config_entries/flow",
        json={"handler": "mqtt"},
        headers=headers,
        timeout=30,
    )
    flow.raise_for_status()
    flow_id = flow.json()["flow_id"]
    result = requests.post(
        f"{url}/api/config/config_entries/flow/{flow_id}",
        json={"broker": "127.0.0.1", "port": int(broker_port)},
        headers=headers,
        timeout=60,
    )
    result.raise_for_status()
    if result.json().get("type") != "create_entry":
        sys.exit(f"ha-check: the MQTT config flow did not finish: {result.text}")
    with open(token_file, "w") as out:
        out.write(token)
    print("ha-check: onboarding and MQTT config flow done")


def expand_device_discovery(broker_port, stop):
    """Home Assistant before 2024.11 has no device-based discovery: republish each component
    of the gate's device message on its per-entity topic, as 2024.11+ does internally (device,
    origin and qos merged in; `platform` names the topic's component)."""
    published = {}

    def on_connect(client, _userdata, _flags, _rc):
        client.subscribe(f"{DISCOVERY_PREFIX}/device/+/config", qos=1)

    def on_message(client, _userdata, message):
        device_id = message.topic.split("/")[2]
        if not message.payload:
            for topic in published.pop(device_id, []):
                client.publish(topic, b"", qos=1, retain=True)
            return
        config = json.loads(message.payload)
        shared = {key: value for key, value in config.items() if key != "cmps"}
        topics = []
        for unique_id, component in config["cmps"].items():
            platform = component["platform"]
            topic = f"{DISCOVERY_PREFIX}/{platform}/{unique_id}/config"
            topics.append(topic)
            if set(component) == {"platform"}:
                payload = b""
            else:
                entity = {key: value for key, value in component.items() if key != "platform"}
                entity.update(shared)
                payload = json.dumps(entity).encode()
            client.publish(topic, payload, qos=1, retain=True)
        published[device_id] = topics

    client = mqtt.Client(client_id="ha-check-expander", clean_session=True)
    client.on_connect = on_connect
    client.on_message = on_message
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    while not stop.is_set():
        try:
            client.connect("127.0.0.1", int(broker_port), keepalive=10)
            break
        except OSError:
            time.sleep(0.5)
    client.loop_start()
    stop.wait()
    client.loop_stop()


def watch(url, token_file, broker_port, out):
    with open(token_file) as token:
        headers = {"Authorization": f"Bearer {token.read().strip()}"}
    stop = threading.Event()
    expander = threading.Thread(target=expand_device_discovery, args=(broker_port, stop))
    expander.start()
    seen = {}
    snapshots = []
    print("ha-check: watching Home Assistant's states (stdin closes to stop)", flush=True)
    stopper = threading.Thread(target=lambda: (sys.stdin.read(), stop.set()))
    stopper.daemon = True
    stopper.start()
    while not stop.is_set():
        try:
            states = requests.get(f"{url}/api/states", headers=headers, timeout=10).json()
        except requests.RequestException:
            time.sleep(0.5)
            continue
        snapshot = {}
        for state in states:
            entity_id = state["entity_id"]
            if "demo_gate" not in entity_id:
                continue
            snapshot[entity_id] = state["state"]
            history = seen.setdefault(entity_id, [])
            entry = {"state": state["state"], "attributes": state["attributes"]}
            if not history or history[-1] != entry:
                history.append(entry)
        if snapshot and (not snapshots or snapshots[-1] != snapshot):
            snapshots.append(snapshot)
        time.sleep(0.25)
    expander.join()
    with open(out, "w") as file:
        json.dump({"entities": seen, "snapshots": snapshots}, file, indent=1)


def check(out, ha_log):
    with open(out) as file:
        recorded = json.load(file)
    seen, snapshots = recorded["entities"], recorded["snapshots"]
    failures = []

    def states(entity_id):
        return [entry["state"] for entry in seen.get(entity_id, [])]

    def expect(what, ok):
        print(f"  {'ok' if ok else 'FAIL'}  {what}")
        if not ok:
            failures.append(what)

    def fired(entity_id, event_type, **attributes):
        for entry in seen.get(entity_id, []):
            attrs = entry["attributes"]
            if attrs.get("event_type") == event_type and all(
                attrs.get(key) == value for key, value in attributes.items()
            ):
                return True
        return False

    print("ha-check: entities and the states Home Assistant showed")
    for entity_id in sorted(seen):
        print(f"    {entity_id}: {' -> '.join(dict.fromkeys(states(entity_id)))}")
    expect("13 or more entities of the demo gate", len(seen) >= 13)
    lock = "binary_sensor.demo_gate_main_lock"
    expect("the lock is a read-only binary_sensor that showed locked (off) and unlocked (on)",
           {"on", "off"} <= set(states(lock)))
    expect("no lock entity (no control that cannot work)",
           not any(entity.startswith("lock.") for entity in seen))
    expect("the contact showed open and closed",
           {"on", "off"} <= set(states("binary_sensor.demo_gate_main_contact")))
    expect("the door mode showed normal and held_open",
           {"normal", "held_open"} <= set(states("sensor.demo_gate_main_mode")))
    expect("access granted fired (failure 1: its template failed on every grant)",
           fired("event.demo_gate_access_granted", "access.granted", door="main"))
    expect("access denied fired with reason no_match",
           fired("event.demo_gate_access_denied", "access.denied", reason="no_match"))
    expect("access denied fired with reason card_rejected",
           fired("event.demo_gate_access_denied", "access.denied", reason="card_rejected"))
    expect("the duress alarm fired (failure 2: no entity)",
           fired("event.demo_gate_duress_alarm", "alarm.duress", severity="alarm"))
    expect("the held-open pre-alarm fired",
           fired("event.demo_gate_door_held_open_pre_alarm", "door.held_open_prealarm"))
    expect("the held-open alarm fired",
           fired("event.demo_gate_door_held_open", "door.held_open", severity="alarm"))
    connectivity = states("binary_sensor.demo_gate_connectivity")
    expect("connectivity showed on, then off after the gate stopped (failure 4)",
           "on" in connectivity and "off" in connectivity[connectivity.index("on"):])
    expect("while connectivity showed off, the door entities showed unavailable",
           any(snapshot.get("binary_sensor.demo_gate_connectivity") == "off"
               and snapshot.get(lock) == "unavailable"
               and snapshot.get("sensor.demo_gate_main_mode") == "unavailable"
               for snapshot in snapshots))
    with open(ha_log) as file:
        log = file.read()
    # The broker is stopped and restarted during the scenario: connection messages are expected.
    problems = [line for line in log.splitlines()
                if "connect" not in line.lower()
                and (("mqtt" in line.lower() or "template" in line.lower()) and " ERROR " in line
                     or "TypeError" in line or "No matching payload" in line
                     or "not JSON serializable" in line or "extra keys not allowed" in line)]
    for line in problems[:10]:
        print(f"    log: {line}")
    expect("no MQTT or template error or warning in Home Assistant's log", not problems)
    if failures:
        sys.exit(f"ha-check: {len(failures)} failed: {'; '.join(failures)}")
    print("ha-check: passed")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"setup": setup, "watch": watch, "check": check}[command](*args)
