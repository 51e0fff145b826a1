"""The amd64 appliance image, built once per set of inputs, and booted in qemu like a store's box.

``built_image`` runs ``images/build --arch amd64`` into the package cache
(``/var/cache/storefleet-image/built/amd64-<inputs>``, outside the repository) unless that
directory already holds the build of the same inputs (the hash ``images/build --inputs-key``
prints: every file the image is made of). ``ApplianceVM`` boots a copy of the disk, grown by a
GiB like a bigger card, with OVMF (UEFI) under KVM when KVM runs OVMF here (TCG otherwise),
headless, the serial console to a file, and qemu's user network forwarding a loopback port to
the kiosk.
The appliance has no login at all, so what the tests know of it comes from where a field tech
would look: the console's ``storefleet-status:`` and ``storefleet-kiosk:`` lines, the kiosk
over HTTP, the screen (a virtio-gpu, which the kiosk session's cage draws on; read with the
monitor's ``screendump``), and the boot partition's loader entries (read with mtools while the
machine is off). The keyboard is qemu's too (``sendkey``), as a field tech's would be.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.harness.services import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "images" / "build"
CACHE = Path(os.environ.get("STOREFLEET_IMAGE_CACHE", "/var/cache/storefleet-image"))
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
MIB = 1024 * 1024
STATUS = re.compile(r"storefleet-status: (.*)")
KIOSK_UP = re.compile(r"storefleet-kiosk: up restarts=(\d+)")
#: how long one boot may take before a test gives up: under KVM a boot settles in well under a
#: minute; under TCG on a busy shared machine (load 20 on 2 cores) 6 to 10 minutes
BOOT_S_KVM = 180.0
BOOT_S_TCG = 1200.0
TOOLS = ("mmdebstrap", "qemu-system-x86_64", "mkfs.erofs", "mkfs.vfat", "mcopy", "sfdisk")


def why_not_boot(boots: int) -> str | None:
    """Why a test of ``boots`` boots does not run here (None: it does).

    Under KVM every boot test runs. Under TCG a boot takes minutes (4 to 10 on a loaded 2-core
    host), so ``STOREFLEET_IMAGE_TCG`` says how much of that to accept: ``1`` the single-boot
    tests (CI's budget, .ci/test), ``all`` every test (the fallback and the power cut: 2 to 3
    boots each).
    """
    if kvm_runs_uefi():
        return None
    accepted = os.environ.get("STOREFLEET_IMAGE_TCG", "")
    if accepted == "all" or (accepted == "1" and boots == 1):
        return None
    wanted = "1" if boots == 1 else "all"
    return f"KVM does not run OVMF here; STOREFLEET_IMAGE_TCG={wanted} boots under TCG (slow)"


def boot_seconds(boots: int = 1) -> float:
    """How long ``boots`` boots may take before a test gives up (guards against hangs)."""
    return boots * (BOOT_S_KVM if kvm_runs_uefi() else BOOT_S_TCG)


def missing_tools() -> list[str]:
    """What this machine lacks to build and boot the image (.ci/test installs all of it)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    missing += [str(p) for p in (OVMF_CODE, OVMF_VARS) if not p.exists()]
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap --mode=root)")
    return missing


@dataclass(frozen=True)
class BuiltImage:
    """One build's artifacts and its manifest."""

    directory: Path
    manifest: dict[str, object]

    @property
    def arch(self) -> str:
        return str(self.manifest["arch"])

    @property
    def disk(self) -> Path:
        return self.directory / f"storefleet-{self.arch}.img"

    @property
    def system(self) -> Path:
        return self.directory / f"system-{self.arch}.erofs"

    def partition(self, label: str) -> tuple[int, int]:
        """Offset and size in bytes of the partition ``label``."""
        layout = self.manifest["layout"]
        assert isinstance(layout, dict)
        where = layout[label]
        return where["offset_mib"] * MIB, where["size_mib"] * MIB


def built_image(arch: str = "amd64") -> BuiltImage:
    """The image of the current inputs, built now only if the cache has no build of them.

    ``STOREFLEET_IMAGE_DIR`` (amd64) or ``STOREFLEET_IMAGE_DIR_ARM64`` names a build to test
    instead (an artifact of CI's build step, or the build of an earlier commit while others keep
    committing to the app).
    """
    given = os.environ.get("STOREFLEET_IMAGE_DIR" + ("" if arch == "amd64" else "_ARM64"))
    if given:
        return BuiltImage(Path(given), json.loads((Path(given) / "manifest.json").read_text()))
    key = subprocess.run(
        [str(BUILD), "--arch", arch, "--out", "/nonexistent", "--inputs-key"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    directory = CACHE / "built" / f"{arch}-{key}"
    manifest = directory / "manifest.json"
    if not manifest.exists():
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            [str(BUILD), "--arch", arch, "--out", str(partial), "--cache", str(CACHE)], check=True
        )
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
    return BuiltImage(directory, json.loads(manifest.read_text()))


@functools.cache
def kvm_runs_uefi() -> bool:
    """Whether KVM here runs OVMF: its boot manager must speak on the serial console.

    A ``/dev/kvm`` is not always a hardware one. The CI machines of this project are Firecracker
    guests whose ``/dev/kvm`` is PVM (``/sys/module/kvm_pvm``; no ``svm``/``vmx`` in the CPU
    flags): it runs paravirtualized guest kernels, and emulates everything a firmware does
    before paging instruction by instruction. OVMF's first FWAIT (opcode 0x9b, which KVM's
    instruction emulator does not implement) stops it with "KVM internal error ... emulation
    failure"; a kernel booted directly crawls through its decompressor. Then the VM runs under
    TCG, slower but the same machine. The probe gives up at qemu's first error line.
    """
    if os.environ.get("STOREFLEET_QEMU_ACCEL") in {"kvm", "tcg"}:
        return os.environ["STOREFLEET_QEMU_ACCEL"] == "kvm"
    if not os.access("/dev/kvm", os.W_OK):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        console, efivars = Path(tmp) / "console", Path(tmp) / "vars.fd"
        errors = Path(tmp) / "stderr"
        shutil.copyfile(OVMF_VARS, efivars)
        with errors.open("wb") as stderr:
            probe = subprocess.Popen(
                [
                    "qemu-system-x86_64",
                    "-enable-kvm",
                    "-machine",
                    "q35",
                    "-display",
                    "none",
                    "-drive",
                    f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                    "-drive",
                    f"if=pflash,format=raw,file={efivars}",
                    "-serial",
                    f"file:{console}",
                    "-monitor",
                    "none",
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and probe.poll() is None:
                if console.exists() and b"BdsDxe" in console.read_bytes():
                    return True
                if b"KVM internal error" in errors.read_bytes():
                    return False
                time.sleep(0.2)
            return False
        finally:
            probe.kill()
            probe.wait()


def accelerator() -> list[str]:
    """qemu's accelerator options: KVM when it runs OVMF here, else TCG with every core it is
    given (multi-threaded) and a large translation cache (the guest's Python is big code)."""
    if kvm_runs_uefi():
        return ["-enable-kvm"]
    return ["-accel", "tcg,thread=multi,tb-size=512"]


class ApplianceVM:
    """qemu-system-x86_64 booting ``disk`` (UEFI); a context manager that powers it off."""

    def __init__(
        self, disk: Path, efivars: Path, console: Path, kiosk_port: int, ssh_port: int = 0
    ) -> None:
        self.disk, self.efivars, self.console, self.kiosk_port = disk, efivars, console, kiosk_port
        #: the box's SSH port (22) forwarded to loopback; 0: a free port picked at start
        self.ssh_port = ssh_port
        self.process: subprocess.Popen[str] | None = None
        self.started = 0.0

    @property
    def kiosk_url(self) -> str:
        return f"http://127.0.0.1:{self.kiosk_port}"

    def start(self) -> None:
        self.console.unlink(missing_ok=True)
        if not self.ssh_port:
            self.ssh_port = free_port()
        self.process = subprocess.Popen(
            [
                "qemu-system-x86_64",
                *accelerator(),
                "-machine",
                "q35",
                "-m",
                "2048",  # Chromium beside the agent and the register, as on a 2 GB board
                "-smp",
                "2",
                "-display",
                "none",
                # the kiosk's screen: virtio-gpu (2D) in the guest, screendump on the host; not
                # qemu's standard VGA, whose bochs-drm cannot import PRIME buffers, which
                # wlroots 0.15 requires of every DRM device ("PRIME import not supported")
                "-vga",
                "none",
                "-device",
                "virtio-gpu-pci",
                "-drive",
                f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive",
                f"if=pflash,format=raw,file={self.efivars}",
                "-drive",
                f"if=virtio,format=raw,file={self.disk}",
                "-netdev",
                f"user,id=store,hostfwd=tcp:127.0.0.1:{self.kiosk_port}-:8080"
                f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
                "-device",
                "virtio-net-pci,netdev=store",
                "-serial",
                f"file:{self.console}",
                "-monitor",
                "stdio",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.started = time.monotonic()

    def ssh_banner(self, timeout: float = 10.0) -> bytes:
        """What the box says on its SSH port (``SSH-2.0-…`` while sshd runs; nothing when it
        does not: qemu accepts the forwarded connection and closes it)."""
        try:
            with socket.create_connection(("127.0.0.1", self.ssh_port), timeout=timeout) as conn:
                conn.settimeout(timeout)
                return conn.recv(64)
        except OSError:
            return b""

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def status(self) -> dict[str, str]:
        """The ``storefleet-status:`` words of the console so far (later lines win)."""
        words: dict[str, str] = {}
        for match in STATUS.finditer(self.console_text()):
            for word in match.group(1).split():
                key, _, value = word.partition("=")
                words[key] = value
        return words

    def wait_for_status(self, boots: int = 1) -> dict[str, str]:
        """Poll the console until the boot's status line is there (the boot has settled).

        ``boots``: how many boots it may take (a failed try and the fallback are two).
        """
        timeout = boot_seconds(boots)
        deadline = time.monotonic() + timeout
        while "agent" not in self.status():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"qemu exited ({self.process.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no status line in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.5)
        return self.status()

    def kiosk_starts(self) -> list[int]:
        """The kiosk session's ``restarts=`` count at each time it came up, in console order."""
        return [int(n) for n in KIOSK_UP.findall(self.console_text())]

    def monitor(self, command: str) -> None:
        """One command to qemu's human monitor (its answer is not read)."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def screendump(self, out: Path, timeout: float = 60.0) -> Path:
        """The screen as a PPM (P6) file at ``out``, once qemu has written all of it."""
        out.unlink(missing_ok=True)
        self.monitor(f"screendump {out}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if out.exists() and ppm_complete(out.read_bytes()):
                return out
            time.sleep(0.2)
        raise AssertionError(f"qemu wrote no screendump to {out} in {timeout:.0f} s")

    def sendkey(self, keys: str) -> None:
        """A key combination typed on the machine's keyboard (qemu's names: ``alt-sysrq-k``)."""
        self.monitor(f"sendkey {keys}")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def power_off(self, timeout: float = 60.0) -> None:
        """ACPI power button (systemd shuts down in order); pulled plug if it does not."""
        if self.process is None or self.process.stdin is None:
            return
        if self.process.poll() is None:
            self.process.stdin.write("system_powerdown\n")
            self.process.stdin.flush()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.power_cut()
        self.process = None

    def power_cut(self) -> None:
        """The plug pulled: qemu killed, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> ApplianceVM:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.power_cut() if kind is not None else self.power_off()


def ppm_complete(data: bytes) -> bool:
    """Whether ``data`` is a whole binary PPM: its header and width x height x 3 bytes."""
    header = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)
    if header is None:
        return False
    width, height = int(header.group(1)), int(header.group(2))
    return len(data) >= header.end() + width * height * 3


def fresh_disk(image: BuiltImage, directory: Path, grow_by_mib: int = 1024) -> tuple[Path, Path]:
    """A sparse copy of the disk, ``grow_by_mib`` larger, and a blank UEFI variable store."""
    disk = directory / "appliance.img"
    subprocess.run(["cp", "--sparse=always", str(image.disk), str(disk)], check=True)
    with disk.open("r+b") as f:
        f.truncate(image.disk.stat().st_size + grow_by_mib * MIB)
    efivars = directory / "efivars.fd"
    shutil.copyfile(OVMF_VARS, efivars)
    if not kvm_runs_uefi():
        give_slow_start_time(image, disk)
    return disk, efivars


def give_slow_start_time(image: BuiltImage, disk: Path) -> None:
    """Slot A's entry on this copy of the disk with ``storefleet.start_deadline=`` (the image's
    storefleet-deadlines generator): under TCG on a loaded host the agent's first start took
    4 minutes, and the health gate's 5 would reboot a machine that is only slow."""
    spec = esp(image, disk)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    name = "::/loader/entries/storefleet-a.conf"
    entry = subprocess.run(
        ["mtype", "-i", spec, name], capture_output=True, text=True, check=True, env=env
    ).stdout
    options = f" storefleet.start_deadline={int(BOOT_S_TCG)}"
    staged = disk.parent / "storefleet-a.conf"
    staged.write_text(re.sub(r"(?m)^(options .*)$", lambda m: m.group(1) + options, entry))
    subprocess.run(["mcopy", "-o", "-i", spec, str(staged), name], check=True, env=env)


def esp(image: BuiltImage, disk: Path) -> str:
    """The mtools image spec of the disk's ESP (``disk@@offset``)."""
    offset, _ = image.partition("esp")
    return f"{disk}@@{offset}"


def loader_entries(image: BuiltImage, disk: Path) -> list[str]:
    """The names of the ESP's boot entries (the machine must be off)."""
    listing = subprocess.run(
        ["mdir", "-b", "-i", esp(image, disk), "::/loader/entries"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    ).stdout
    return sorted(Path(line.strip()).name for line in listing.splitlines() if line.strip())


def install_into_slot_b(
    image: BuiltImage, disk: Path, system: Path, tries: int = 1, version: str = ""
) -> str:
    """What ``slot install`` does on the appliance, done offline: ``system`` into system-b, and
    slot B's entry with ``tries`` boot tries and a version above A's (so it is tried first),
    and beside B's kernel its OS ``version`` and the install's name (what ``slot state`` tells
    the agent). Returns the install's name (``version@time``)."""
    offset, size = image.partition("system-b")
    assert system.stat().st_size <= size, "the system image outgrows the slot"
    with disk.open("r+b") as out, system.open("rb") as src:
        out.seek(offset)
        shutil.copyfileobj(src, out, 4 * MIB)
    uuids = image.manifest["partition_uuids"]
    assert isinstance(uuids, dict)
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    spec = esp(image, disk)
    entry_a = subprocess.run(
        ["mtype", "-i", spec, "::/loader/entries/storefleet-a.conf"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    entry_b = (
        entry_a.replace("slot A", "slot B")
        .replace("version 1", "version 2")
        .replace("/a/", "/b/")
        .replace(uuids["system-a"], uuids["system-b"])
        .replace("storefleet.slot=a", "storefleet.slot=b")
    )
    for old in loader_entries(image, disk):
        if old.startswith("storefleet-b"):
            subprocess.run(["mdel", "-i", spec, f"::/loader/entries/{old}"], check=True, env=env)
    staged = disk.parent / f"storefleet-b+{tries}.conf"
    staged.write_text(entry_b)
    subprocess.run(["mmd", "-i", spec, "::/b"], check=False, env=env, capture_output=True)
    version = version or f"amd64-{image.manifest['inputs']}"
    attempt = f"{version}@{time.time_ns()}"
    (disk.parent / "os-version").write_text(f"{version}\n")
    (disk.parent / "os-attempt").write_text(f"{attempt}\n")
    sources = {name: image.directory / name for name in ("vmlinuz", "initrd.img")}
    for name in ("os-version", "os-attempt"):
        sources[name] = disk.parent / name
    for name, source in sources.items():
        subprocess.run(
            ["mcopy", "-o", "-i", spec, str(source), f"::/b/{name}"], check=True, env=env
        )
    subprocess.run(
        ["mcopy", "-o", "-i", spec, str(staged), f"::/loader/entries/{staged.name}"],
        check=True,
        env=env,
    )
    return attempt


def broken_system(directory: Path) -> Path:
    """A system image that cannot boot: an erofs with no init in it."""
    tree = directory / "broken-root"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("NAME=broken\n")
    image = directory / "broken.erofs"
    subprocess.run(
        ["mkfs.erofs", "--quiet", str(image), str(tree)], check=True, capture_output=True
    )
    return image


def broken_os_image(image: BuiltImage, directory: Path, version: str) -> Path:
    """An OS image ``slot install`` takes but that cannot boot: the build's kernel and initrd
    with no system around them (no init), and a dm-verity root hash beside it that its slot
    does not hold, so the initramfs refuses to open the slot (the boot stops, ``panic=10``
    reboots, the boot loader falls back). ``<name>.verity`` is written beside it."""
    tree = directory / "broken-os"
    kernel = f"vmlinuz-{version}"
    (tree / "boot").mkdir(parents=True)
    shutil.copyfile(image.directory / "vmlinuz", tree / "boot" / kernel)
    shutil.copyfile(image.directory / "initrd.img", tree / "boot" / f"initrd.img-{version}")
    (tree / "usr/lib/storefleet").mkdir(parents=True)
    (tree / "usr/lib/storefleet/os-version").write_text(f"{version}\n")
    (tree / "etc").mkdir()
    (tree / "etc/os-release").write_text("NAME=broken\n")
    out = directory / "broken-os.erofs"
    subprocess.run(
        ["mkfs.erofs", "--quiet", "-zlz4", str(out), str(tree)], check=True, capture_output=True
    )
    size = out.stat().st_size
    offset = (size + 4095) // 4096 * 4096  # where a hash tree would start: none is there
    out.with_name(out.name + ".verity").write_text(f"root_hash={'0' * 64}\nhash_offset={offset}\n")
    return out


def put_on_data_partition(disk: Path, files: dict[str, Path], directory: Path) -> None:
    """``files`` (name -> host file) into ``/var/lib/storefleet/os-images`` of a disk not booted
    yet, as support would copy OS images onto a store's box: the data partition grown into the
    disk's free space first (what systemd-repart and growfs do on the first boot; there is
    nothing left for them then), the files written with debugfs (owned by root, readable by
    the agent)."""
    layout = subprocess.run(
        ["sfdisk", "--dump", str(disk)], capture_output=True, text=True, check=True
    ).stdout
    line = next(row for row in layout.splitlines() if 'name="data"' in row)
    number = re.search(r"(\d+)\s*:", line)
    assert number is not None, line
    subprocess.run(  # the backup GPT moves to the disk's new end with it
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "-N", number.group(1), str(disk)],
        input=", +\n",
        text=True,
        check=True,
        capture_output=True,
    )
    layout = subprocess.run(
        ["sfdisk", "--dump", str(disk)], capture_output=True, text=True, check=True
    ).stdout
    line = next(row for row in layout.splitlines() if 'name="data"' in row)
    fields = dict(f.strip().split("=", 1) for f in line.split(":", 1)[1].split(","))
    start, sectors = int(fields["start"]), int(fields["size"])
    data = directory / "data-partition.img"
    subprocess.run(
        ["dd", f"if={disk}", f"of={data}", "bs=4M", "iflag=skip_bytes,count_bytes",
         f"skip={start * 512}", f"count={sectors * 512}", "conv=sparse", "status=none"],
        check=True,
    )  # fmt: skip
    subprocess.run(["e2fsck", "-fy", str(data)], check=False, capture_output=True)
    subprocess.run(["resize2fs", str(data)], check=True, capture_output=True)
    script = ["mkdir /storefleet/os-images"]
    script += [f"write {source} /storefleet/os-images/{name}" for name, source in files.items()]
    (directory / "debugfs.cmds").write_text("\n".join(script) + "\n")
    subprocess.run(
        ["debugfs", "-w", "-f", str(directory / "debugfs.cmds"), str(data)],
        check=True,
        capture_output=True,
    )
    listing = subprocess.run(
        ["debugfs", "-R", "ls -l /storefleet/os-images", str(data)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in files:
        assert name in listing, listing
    subprocess.run(
        ["dd", f"if={data}", f"of={disk}", "bs=4M", "oflag=seek_bytes", f"seek={start * 512}",
         "conv=notrunc,sparse", "status=none"],
        check=True,
    )  # fmt: skip
    data.unlink()
