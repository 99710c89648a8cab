"""Trial program (b) of issue 11 with Python's qemu.qmp: the same backup tool as
qmp-api/examples/block_tool.rs, for comparison (usage: block_tool.py [QMP_SOCKET])."""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

from qemu.qmp import QMPClient


async def run_job(qmp, command, args):
    """Runs a job-creating command, waits until the job concludes, dismisses it."""
    job_id = args["job-id"]
    with qmp.listener("JOB_STATUS_CHANGE") as events:
        await qmp.execute(command, args)
        async for event in events:
            if event["data"] == {"id": job_id, "status": "concluded"}:
                break
    job = next(j for j in await qmp.execute("query-jobs") if j["id"] == job_id)
    await qmp.execute("job-dismiss", {"id": job_id})
    if "error" in job:
        raise RuntimeError(f"job {job_id} failed: {job['error']}")
    return job


async def main():
    qmp = QMPClient("block-tool")
    tmp = tempfile.mkdtemp()
    qemu = None
    if len(sys.argv) > 1:
        await qmp.connect(sys.argv[1])
    else:
        sock = os.path.join(tmp, "qmp.sock")
        await qmp.start_server(sock)
        qemu = subprocess.Popen(
            [os.environ.get("QSD", "qemu-storage-daemon")]
            + ["--chardev", f"socket,path={sock},id=m0", "--monitor", "chardev=m0"]
        )
        await qmp.accept()

    for name in ["src", "dst"]:
        path, file = os.path.join(tmp, f"{name}.qcow2"), f"{name}-file"
        options = {"driver": "file", "filename": path, "size": 0}
        await run_job(qmp, "blockdev-create", {"job-id": "create", "options": options})
        node = {"driver": "file", "filename": path, "node-name": file}
        await qmp.execute("blockdev-add", node)
        options = {"driver": "qcow2", "file": file, "size": 64 << 20}
        await run_job(qmp, "blockdev-create", {"job-id": "create", "options": options})
        node = {"driver": "qcow2", "file": file, "node-name": name}
        await qmp.execute("blockdev-add", node)
        print(f"created {name}")

    backup = {"job-id": "backup", "device": "src", "target": "dst", "sync": "full"}
    job = await run_job(qmp, "blockdev-backup", {**backup, "auto-dismiss": False})
    print(f"backup: {job['current-progress']} of {job['total-progress']} bytes")

    addr = {"type": "unix", "data": {"path": os.path.join(tmp, "nbd.sock")}}
    await qmp.execute("nbd-server-start", {"addr": addr})
    export = {"type": "nbd", "id": "exp0", "node-name": "dst"}
    await qmp.execute("block-export-add", export)
    for export in await qmp.execute("query-block-exports"):
        print(f"export {export['id']}: {export['node-name']}")

    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except EOFError:  # the daemon closed the socket first
        pass
    if qemu:
        print(f"quit: exit status: {qemu.wait()}")
    shutil.rmtree(tmp)


asyncio.run(main())
