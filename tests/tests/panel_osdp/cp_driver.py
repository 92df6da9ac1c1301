"""The control panel side of the panel_osdp system test: libosdp's CP (PyPI package `libosdp`)
on the master side of a pseudo-terminal, steered line by line from the Rust test.

Prints `PTY <path>` first (the PD opens that slave), then one `CP {json}` line per answer.
Commands on stdin:
  start ADDRESS KEY_HEX|none   a new ControlPanel (KEY none: no SCBK given)
  stop                         stop it
  status                       {"online": bool, "sc": bool}
  wait_sc SECONDS              until the secure channel is up: {"sc": bool}
  wait_sc_lost SECONDS         until it is down: {"sc": bool}
  wait_card SECONDS            the next card read: {"card": {...}} or {"card": null}
  answer COLOR|none            from now on, answer each card read at once, as a panel does:
                               LED COLOR and two beeps (submitted before wait_card reports it)
  led COLOR                    permanent LED colour (red, green, amber, off)
  buzzer                       two beeps
  comset ADDRESS BAUD          osdp_COMSET
  status_report local|input    osdp_LSTAT / osdp_ISTAT: {"report": {"type", "nr_entries", "mask"}}
  corrupt_mac                  flip one MAC byte of the next secured command (CRC kept valid)
  unplug                       close the pty (both sides): the PD's port fails and its device node
                               disappears, as when a USB-RS485 adapter is pulled; the CP keeps
                               polling into nothing
  plug                         a new pty for the CP: {"pty": path of the new slave}
  quit
"""

import fcntl
import json
import os
import sys
import termios
import time
import tty

import osdp


def crc16(data):
    # CRC-16/AUG-CCITT (poly 0x1021, init 0x1D0F): OSDP's packet CRC.
    crc = 0x1D0F
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


class PtyChannel(osdp.Channel):
    def __init__(self, fd):
        super().__init__()
        self.fd = fd
        self.corrupt_next = False
        self.corrupted = 0

    def read(self, max_bytes):
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def write(self, buf):
        buf = bytearray(buf)
        offset = 1 if buf and buf[0] == 0xFF else 0
        secured = (
            len(buf) > offset + 7
            and buf[offset + 4] & 0x08
            and buf[offset + 6] in (0x15, 0x17)
        )
        if self.corrupt_next and secured:
            buf[-3] ^= 0x01  # a MAC byte (MAC is the 4 bytes before the CRC)
            crc = crc16(bytes(buf[offset:-2]))
            buf[-2] = crc & 0xFF
            buf[-1] = crc >> 8
            self.corrupt_next = False
            self.corrupted += 1
        try:
            return os.write(self.fd, bytes(buf))
        except OSError:
            return 0

    def flush(self):
        pass


def say(value):
    print("CP " + json.dumps(value), flush=True)


COLORS = {
    "off": osdp.CommandLEDColor.Black,
    "red": osdp.CommandLEDColor.Red,
    "green": osdp.CommandLEDColor.Green,
    "amber": osdp.CommandLEDColor.Amber,
}


def submit_led(cp, address, color):
    return cp.submit_command(address, {
        "command": osdp.Command.LED, "reader": 0, "led_number": 0,
        "control_code": 1, "on_count": 10, "off_count": 0,
        "on_color": COLORS[color], "off_color": osdp.CommandLEDColor.Black,
        "temporary": False,
    })


def submit_buzzer(cp, address):
    return cp.submit_command(address, {
        "command": osdp.Command.Buzzer, "reader": 0, "control_code": 2,
        "on_count": 2, "off_count": 2, "rep_count": 2,
    })


def new_pty():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    flags = fcntl.fcntl(master, fcntl.F_GETFL)
    fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    return master, slave


def main():
    master, slave = new_pty()
    print("PTY " + os.ttyname(slave), flush=True)
    channel = PtyChannel(master)
    cp = None
    address = 0
    answer = None
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command = words[0]
        if command == "start":
            # A reply to the previous CP's last command may still be in the pty: drop it, or
            # the new CP would take it for the answer to its first command.
            time.sleep(0.3)
            while channel.read(4096):
                pass
            address = int(words[1])
            key = None if words[2] == "none" else bytes.fromhex(words[2])
            info = osdp.PDInfo(address, channel, scbk=key, flags=[osdp.LibFlag.EnableNotification])
            cp = osdp.ControlPanel([info], log_level=osdp.LogLevel.Warning)
            cp.start()
            say({"started": True})
        elif command == "stop":
            if cp:
                cp.stop()
                cp = None
            say({"stopped": True})
        elif command == "status":
            say({"online": cp.is_online(address), "sc": cp.is_sc_active(address)})
        elif command == "wait_sc":
            deadline = time.time() + float(words[1])
            while time.time() < deadline and not cp.is_sc_active(address):
                time.sleep(0.05)
            say({"sc": cp.is_sc_active(address), "online": cp.is_online(address)})
        elif command == "wait_sc_lost":
            deadline = time.time() + float(words[1])
            while time.time() < deadline and cp.is_sc_active(address):
                time.sleep(0.05)
            say({"sc": cp.is_sc_active(address), "online": cp.is_online(address)})
        elif command == "wait_online":
            deadline = time.time() + float(words[1])
            while time.time() < deadline and not cp.is_online(address):
                time.sleep(0.05)
            say({"online": cp.is_online(address), "sc": cp.is_sc_active(address)})
        elif command == "wait_card":
            deadline = time.time() + float(words[1])
            card = None
            while time.time() < deadline and card is None:
                event = cp.get_event(address, timeout=max(0.05, deadline - time.time()))
                if event and event.get("event") == osdp.Event.CardRead:
                    card = {
                        "format": event.get("format"),
                        "length": event.get("length"),
                        "data": event.get("data", b"").hex(),
                        "wiegand": event.get("format") == osdp.CardFormat.Wiegand,
                    }
            answered = None
            if card is not None and answer is not None:
                answered = bool(submit_led(cp, address, answer)) and bool(submit_buzzer(cp, address))
            say({"card": card, "answered": answered})
        elif command == "answer":
            answer = None if words[1] == "none" else words[1]
            say({"answer": answer})
        elif command == "led":
            say({"submitted": bool(submit_led(cp, address, words[1]))})
        elif command == "buzzer":
            say({"submitted": bool(submit_buzzer(cp, address))})
        elif command == "comset":
            ok = cp.submit_command(address, {
                "command": osdp.Command.Comset, "address": int(words[1]), "baud_rate": int(words[2]),
            })
            say({"submitted": bool(ok)})
        elif command == "status_report":
            kinds = {"local": osdp.StatusReportType.Local, "input": osdp.StatusReportType.Input}
            ok = cp.submit_command(address, {
                "command": osdp.Command.Status, "type": kinds[words[1]], "nr_entries": 0, "mask": 0,
            })
            deadline = time.time() + 10
            report = None
            while ok and time.time() < deadline and report is None:
                event = cp.get_event(address, timeout=max(0.05, deadline - time.time()))
                if event and event.get("event") == osdp.Event.Status:
                    report = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in event.items()}
            say({"submitted": bool(ok), "report": report})
        elif command == "corrupt_mac":
            channel.corrupt_next = True
            deadline = time.time() + 5
            while time.time() < deadline and channel.corrupt_next:
                time.sleep(0.02)
            say({"corrupted": channel.corrupted})
        elif command == "unplug":
            # The CP's reads and writes fail quietly on the closed descriptor until `plug`.
            channel.fd = -1
            os.close(master)
            os.close(slave)
            say({"unplugged": True})
        elif command == "plug":
            master, slave = new_pty()
            channel.fd = master
            say({"pty": os.ttyname(slave)})
        elif command == "quit":
            break
        else:
            say({"error": "unknown command " + command})
    if cp:
        cp.stop()
    say({"bye": True})


if __name__ == "__main__":
    main()
