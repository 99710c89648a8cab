#!/usr/bin/env python3
"""Drives a QMP server with Python's qemu.qmp (a client nobody in this project wrote).

Usage: qmp_interop.py SOCKET. Connects, negotiates, runs a few commands (one of them out of
band), provokes an error, collects events, disconnects cleanly, and prints one JSON object
with everything it saw; the Rust test (tests/tests/server_python.rs) checks it.
"""

import asyncio
import json
import sys

from qemu.qmp import EventListener, ExecuteError, QMPClient


async def main(path):
    out = {}
    client = QMPClient("interop")
    events = EventListener()
    client.register_listener(events)
    await client.connect(path)
    qmp = client.greeting.QMP
    out["greeting"] = {"version": qmp.version, "capabilities": list(qmp.capabilities)}
    out["status"] = await client.execute("query-status")
    out["echo"] = await client.execute(
        "echo", {"text": "h\u00e9llo \U0001F600", "list": [1, 2.5, None, True, {"k": "v"}]}
    )
    try:
        await client.execute("no-such-command")
        out["error"] = None
    except ExecuteError as err:
        out["error"] = {"class": err.error_class, "desc": str(err)}
    try:
        await client.execute("eject", {"device": "cd0"})
        out["eject"] = None
    except ExecuteError as err:
        out["eject"] = {"class": err.error_class, "desc": str(err)}
    out["stop"] = await client.execute("stop")
    received = []
    for _ in range(3):
        event = await asyncio.wait_for(events.get(), 5)
        received.append({"event": event["event"], "data": event.get("data"),
                         "timestamp": event["timestamp"]})
    out["events"] = received
    out["oob"] = await client.execute("ping", oob=True)
    await client.disconnect()
    out["disconnected"] = True
    print(json.dumps(out))


asyncio.run(main(sys.argv[1]))
