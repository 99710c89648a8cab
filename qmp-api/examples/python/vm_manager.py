"""Trial program (a) of issue 11 with Python's qemu.qmp: the same VM manager as
qmp-api/examples/vm_manager.rs, for comparison (usage: vm_manager.py [QMP_SOCKET])."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

from qemu.qmp import QMPClient


async def main():
    qmp = QMPClient("vm-manager")
    tmp = tempfile.mkdtemp()
    qemu = None
    if len(sys.argv) > 1:
        await qmp.connect(sys.argv[1])
    else:
        sock = os.path.join(tmp, "qmp.sock")
        await qmp.start_server(sock)
        qemu = subprocess.Popen(
            [os.environ.get("QEMU", "qemu-system-x86_64")]
            + ["-machine", "q35", "-S", "-nodefaults", "-display", "none"]
            + ["-device", "pcie-root-port,id=port0,chassis=1", "-qmp", f"unix:{sock}"]
        )
        await qmp.accept()

    print(f"status: {(await qmp.execute('query-status'))['status']}")
    for cpu in await qmp.execute("query-cpus-fast"):
        print(f"cpu {cpu['cpu-index']}: thread {cpu['thread-id']}")
    for block in await qmp.execute("query-block"):
        print(f"block {block['device']}: {block['type']}")
    for bus in await qmp.execute("query-pci"):
        for device in bus["devices"]:
            desc = device["class_info"].get("desc", "")
            print(f"pci {device['slot']:02x}.{device['function']}: {desc}")

    null = {"driver": "null-co", "node-name": "null0", "size": 64 << 20}
    await qmp.execute("blockdev-add", null)
    disk = {"driver": "virtio-blk-pci", "id": "disk0", "bus": "port0", "drive": "null0"}
    await qmp.execute("device_add", disk)
    print("added disk0 on port0")

    await qmp.execute("object-add", {"qom-type": "throttle-group", "id": "tg0"})
    limits = {"iops-total": 1000, "bps-read": 1 << 20}
    await qmp.execute(
        "qom-set", {"path": "/objects/tg0", "property": "limits", "value": limits}
    )
    limits = await qmp.execute(
        "qom-get", {"path": "/objects/tg0", "property": "limits"}
    )
    print(f"tg0: iops-total {limits['iops-total']}")

    with qmp.listener(("RESUME", "STOP")) as events:
        await qmp.execute("cont")
        await asyncio.wait_for(events.get(), 10)
        status = await qmp.execute("query-status")
        print(f"resumed: {status['status']}")
        await qmp.execute("stop")
        await asyncio.wait_for(events.get(), 10)
        status = await qmp.execute("query-status")
        print(f"stopped: {status['status']}")

    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except EOFError:  # QEMU closed the socket first
        pass
    if qemu:
        print(f"quit: exit status: {qemu.wait()}")
    shutil.rmtree(tmp)


asyncio.run(main())
