"""docker-py's broad API, step by step, as one JSON document on stdout.

Run by test/integration/clients-docker-py.test.ts with Debian's python3-docker (5.0.3), once with
DOCKER_HOST at the guard (everything granted) and once straight at dockerd: both documents must be
equal. Each step records what a program would see (values, or the error's class and status), never
ids or times, so the two runs compare as they are. Everything is created under DSF_PREFIX and removed
at the end (and at the start, should a killed run have left something).
"""

import io
import json
import os
import re
import socket
import sys
import tarfile
import time

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.utils.socket import frames_iter, demux_adaptor

IMAGE = os.environ["DSF_IMAGE"]
PREFIX = os.environ.get("DSF_PREFIX", "dsf-py")
LABEL = {"dsf-py": PREFIX}
client = docker.from_env(timeout=30)
api = client.api
results = []


def step(name):
    def wrap(function):
        # Progress on stderr: the test shows where a hung run stopped.
        sys.stderr.write(f"step: {name}\n")
        sys.stderr.flush()
        try:
            value = function()
            results.append({"step": name, "ok": True, "value": value})
        except (APIError, DockerException, OSError) as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            explanation = getattr(error, "explanation", None)
            results.append(
                {"step": name, "ok": False, "error": type(error).__name__, "status": status, "explanation": re.sub(r"[0-9a-f]{12,64}", "<id>", str(explanation or error))[:300]}
            )
        return function

    return wrap


def raw_socket(sock):
    # docker-py hands back a SocketIO over the hijacked connection; its _sock is the socket itself.
    return getattr(sock, "_sock", sock)


def read_frames(sock):
    out = {1: b"", 2: b""}
    for stream, data in frames_iter(sock, tty=False):
        out[stream] = out.get(stream, b"") + data
    return {"stdout": out[1].decode(), "stderr": out[2].decode()}


def cleanup():
    for container in client.containers.list(all=True, filters={"label": f"dsf-py={PREFIX}"}):
        container.remove(force=True, v=True)
    for network in client.networks.list(names=[f"{PREFIX} net", f"{PREFIX}-réseau", f"{PREFIX}-net"]):
        try:
            network.remove()
        except NotFound:
            pass
    for volume in client.volumes.list(filters={"label": f"dsf-py={PREFIX}"}):
        volume.remove(force=True)
    for tag in (f"{PREFIX}-saved:latest", f"{PREFIX}-committed:latest"):
        try:
            client.images.remove(tag, force=True)
        except NotFound:
            pass


cleanup()
started_at = int(time.time()) - 1


@step("ping")
def _():
    return client.ping()


@step("version")
def _():
    return client.version()["ApiVersion"]


@step("info")
def _():
    return sorted(k for k in ("Containers", "Images", "Driver") if k in client.info())


@step("images.get")
def _():
    return client.images.get(IMAGE).tags


@step("images.list")
def _():
    return IMAGE in [tag for image in client.images.list() for tag in image.tags]


@step("containers.run (foreground, remove)")
def _():
    return client.containers.run(IMAGE, ["sh", "-c", "echo run-out; sleep 0.3; echo run-err >&2"], network_mode="none", stderr=True, remove=True, labels=LABEL).decode()


@step("containers.run (exit code)")
def _():
    try:
        client.containers.run(IMAGE, ["sh", "-c", "exit 7"], network_mode="none", remove=True, labels=LABEL)
        return "no error"
    except docker.errors.ContainerError as error:
        return error.exit_status


@step("containers.create + start + inspect")
def _():
    container = client.containers.create(
        IMAGE, ["sh", "-c", "echo ready; exec sleep 300"], name=f"{PREFIX}-main", network_mode="none", labels=LABEL
    )
    container.start()
    time.sleep(0.3)
    container.reload()
    return [container.name, container.status, container.labels]


main = None
try:
    main = client.containers.get(f"{PREFIX}-main")
except DockerException:
    pass


@step("containers.list (label filter)")
def _():
    return [c.name for c in client.containers.list(filters={"label": f"dsf-py={PREFIX}"})]


@step("container.logs")
def _():
    return main.logs().decode()


@step("container.logs (stream, follow=False)")
def _():
    return b"".join(main.logs(stream=True, follow=False)).decode()


@step("container.top")
def _():
    return [row[-1] for row in main.top()["Processes"]]


@step("container.exec_run")
def _():
    result = main.exec_run(["sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"], demux=True)
    return [result.exit_code, [part.decode() if part else None for part in result.output]]


@step("container.exec_run (stream)")
def _():
    return b"".join(main.exec_run(["sh", "-c", "echo a; echo b"], stream=True).output).decode()


@step("exec with stdin through the socket")
def _():
    exec_id = api.exec_create(main.id, ["sh", "-c", "read line; echo got:$line; cat"], stdin=True, stdout=True, stderr=True)["Id"]
    sock = raw_socket(api.exec_start(exec_id, socket=True))
    sock.sendall(b"hello\nmore input\n")
    sock.shutdown(socket.SHUT_WR)
    output = read_frames(sock)
    sock.close()
    return [output, api.exec_inspect(exec_id)["ExitCode"]]


@step("exec with tty")
def _():
    exec_id = api.exec_create(main.id, ["echo", "tty-out"], tty=True)["Id"]
    return api.exec_start(exec_id, tty=True).decode()


attached_ids = []


@step("attach with stdin through the socket")
def _():
    container = client.containers.create(
        IMAGE, ["sh", "-c", "read line; echo attached:$line"], name=f"{PREFIX}-attach", network_mode="none", labels=LABEL,
        stdin_open=True,
    )
    attached_ids.append(container.id)
    sock = raw_socket(container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}))
    container.start()
    sock.sendall(b"over-attach\n")
    output = read_frames(sock)
    sock.close()
    return [output, container.wait()["StatusCode"]]


@step("container.attach (logs=True, stream) until the container exits")
def _():
    container = client.containers.run(
        IMAGE, ["sh", "-c", "sleep 1; echo attach-out; echo attach-end"], network_mode="none", detach=True, labels=LABEL
    )
    return b"".join(container.attach(stdout=True, stderr=True, stream=True, logs=True)).decode()


@step("container.wait + logs of a finished container")
def _():
    container = client.containers.run(IMAGE, ["sh", "-c", "echo done; exit 2"], network_mode="none", detach=True, labels=LABEL)
    code = container.wait()["StatusCode"]
    return [code, container.logs().decode()]


@step("put_archive + get_archive")
def _():
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        content = b"archived content\n"
        info = tarfile.TarInfo("dsf-file.txt")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    put = main.put_archive("/tmp", data.getvalue())
    stream, stat = main.get_archive("/tmp/dsf-file.txt")
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        text = tar.extractfile("dsf-file.txt").read().decode()
    return [put, stat["name"], stat["size"], text]


@step("container.diff")
def _():
    return sorted(change["Path"] for change in main.diff())


@step("container.export")
def _():
    with tarfile.open(fileobj=io.BytesIO(b"".join(main.export())), mode="r|") as tar:
        names = {member.name.lstrip("./") for member in tar}
    return ["bin/busybox" in names, "tmp/dsf-file.txt" in names]


@step("container.stats (one shot)")
def _():
    return sorted(k for k in ("read", "pids_stats", "memory_stats") if k in main.stats(stream=False))


@step("pause / unpause")
def _():
    main.pause()
    main.reload()
    paused = main.status
    main.unpause()
    main.reload()
    return [paused, main.status]


@step("rename")
def _():
    main.rename(f"{PREFIX}-renamed")
    main.reload()
    name = main.name
    main.rename(f"{PREFIX}-main")
    return name


@step("update")
def _():
    return main.update(mem_limit="64m", memswap_limit="128m").get("Warnings")


@step("commit")
def _():
    image = main.commit(repository=f"{PREFIX}-committed", tag="latest")
    return image.tags


@step("restart + stop + kill")
def _():
    main.restart(timeout=0)
    main.reload()
    restarted = main.status
    main.stop(timeout=0)
    main.reload()
    stopped = main.status
    main.start()
    main.kill(signal="SIGKILL")
    main.wait()
    main.reload()
    return [restarted, stopped, main.status]


@step("images: tag, save, remove, load")
def _():
    image = client.images.get(IMAGE)
    image.tag(f"{PREFIX}-saved", "latest")
    saved = b"".join(client.images.get(f"{PREFIX}-saved:latest").save(named=True))
    client.images.remove(f"{PREFIX}-saved:latest")
    gone = f"{PREFIX}-saved:latest" not in [t for i in client.images.list() for t in i.tags]
    loaded = client.images.load(saved)
    return [gone, sorted(t for i in loaded for t in i.tags)]


@step("images.history")
def _():
    return len(client.images.get(IMAGE).history())


@step("images.pull (no registry: refused by the daemon's proxy)")
def _():
    try:
        client.images.pull("dsf-not-pulled", tag="latest")
        return "pulled"
    except APIError as error:
        return error.response.status_code


@step("volumes: create, get, list, remove")
def _():
    volume = client.volumes.create(f"{PREFIX}-vol", labels=LABEL)
    got = client.volumes.get(f"{PREFIX}-vol").name
    listed = [v.name for v in client.volumes.list(filters={"label": f"dsf-py={PREFIX}"})]
    used = client.containers.run(
        IMAGE, ["sh", "-c", "echo in-volume > /data/f; cat /data/f"], network_mode="none", remove=True, labels=LABEL,
        volumes={f"{PREFIX}-vol": {"bind": "/data", "mode": "rw"}},
    ).decode()
    volume.remove()
    return [got, listed, used]


@step("networks: create, get, list, remove")
def _():
    network = client.networks.create(f"{PREFIX}-net", driver="bridge", internal=True, labels=LABEL)
    got = client.networks.get(network.id).name
    listed = [n.name for n in client.networks.list(names=[f"{PREFIX}-net"])]
    network.remove()
    return [got, listed]


@step("network with a space in its name (docker-py's test_create_remove_network_with_space_in_name)")
def _():
    name = f"{PREFIX} net"
    network_id = api.create_network(name, internal=True, labels=LABEL)["Id"]
    inspected = api.inspect_network(name)["Name"]
    api.remove_network(name)
    return [inspected, [n.name for n in client.networks.list(names=[name])]]


@step("network with a non-ASCII name")
def _():
    name = f"{PREFIX}-réseau"
    api.create_network(name, internal=True, labels=LABEL)
    inspected = api.inspect_network(name)["Name"]
    api.remove_network(name)
    return inspected


@step("not found")
def _():
    try:
        client.containers.get(f"{PREFIX}-no-such-container")
        return "found"
    except NotFound as error:
        return error.response.status_code


@step("events (since, until)")
def _():
    until = int(time.time()) + 1
    actions = set()
    for event in client.events(since=started_at, until=until, decode=True, filters={"container": attached_ids[0]}):
        actions.add(event.get("Action") or event.get("status"))
    return sorted(actions)


@step("df")
def _():
    return sorted(client.df().keys())


@step("container.remove")
def _():
    main.remove(force=True)
    return f"{PREFIX}-main" in [c.name for c in client.containers.list(all=True, filters={"label": f"dsf-py={PREFIX}"})]


@step("containers.prune (label filter)")
def _():
    return len(client.containers.prune(filters={"label": f"dsf-py={PREFIX}"}).get("ContainersDeleted") or []) > 0


cleanup()
json.dump(results, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
sys.stdout.write("\n")
