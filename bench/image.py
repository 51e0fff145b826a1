"""The appliance image: build time, size, boot to ready and fallback, in rounds.

Run as root on a machine with the image tools (.ci/test installs them):

    .venv/bin/python bench/image.py --rounds 3 [--cold] [--arch amd64]

Figures (each measured once per round, median and spread through bench/rounds.py):
- build time with a warm package cache (``images/build`` into a scratch directory; --cold adds a
  build into an empty cache: every .deb and wheel downloaded, evdev compiled);
- raw and zstd-compressed image size (goal: amd64 twin < 1 GB compressed);
- amd64: boot to the kiosk answering and to the boot's status line (goal < 20 s), an enrolled
  appliance's boot to its register ready and to its first sale stored by the cloud (goal < 30 s;
  the control plane and broker on the host, tests/images/store_rig.py), and a broken slot B
  tried once -> back on slot A with the revert reported (seconds from power on).
The goals are for KVM; where KVM cannot run OVMF (tests/images/appliance_vm.kvm_runs_uefi) the
boots run under TCG, and the table and JSON say which (``accel``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rounds import Goal, Rounds, add_rounds_argument
from tests.control_plane.provisioning.fleet_harness import make_ca
from tests.harness.services import free_port, wait_until
from tests.images.appliance_vm import (
    CACHE,
    ApplianceVM,
    BuiltImage,
    boot_seconds,
    broken_system,
    fresh_disk,
    install_into_slot_b,
    kvm_runs_uefi,
)
from tests.images.store_rig import (
    PIN,
    Kiosk,
    replicated,
    shows,
    staff_ready,
    store_for_appliance,
    vm_qr,
)

BUILD = ROOT / "images" / "build"
GB = 1000**3


def build(arch: str, out: Path, cache: Path) -> tuple[float, BuiltImage]:
    start = time.monotonic()
    subprocess.run(
        [str(BUILD), "--arch", arch, "--out", str(out), "--cache", str(cache)],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.monotonic() - start
    return seconds, BuiltImage(out, json.loads((out / "manifest.json").read_text()))


def compressed_bytes(disk: Path) -> int:
    done = subprocess.run(
        f"zstd -q -T0 -3 -c {disk} | wc -c", shell=True, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def kiosk_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # 503 before enrolment is an answer
    except OSError:
        return False


def boot_times(image: BuiltImage, work: Path) -> tuple[float, float]:
    """Seconds from power on to the kiosk answering, and to the status line."""
    disk, efivars = fresh_disk(image, work)
    vm = ApplianceVM(disk, efivars, work / "boot.console", free_port())
    with vm:
        while not kiosk_answers(vm.kiosk_url):
            if time.monotonic() - vm.started > 180:
                raise SystemExit(f"the kiosk did not answer:\n{vm.tail()}")
            time.sleep(0.2)
        kiosk = time.monotonic() - vm.started
        vm.wait_for_status()
        settled = time.monotonic() - vm.started
    return kiosk, settled


async def first_sale_times(image: BuiltImage, work: Path) -> tuple[float, float]:
    """An enrolled appliance's boot: seconds from power on to its register ready to sell, and
    to its first sale stored by the cloud. The enrolment boot before it is not timed."""
    guard = boot_seconds()
    async with store_for_appliance(make_ca(work / "ca"), work) as store:
        fleet = store.fleet
        created = await fleet.create_enrolment(register_name="bench")
        disk, efivars = fresh_disk(image, work)
        enrolling = ApplianceVM(disk, efivars, work / "enrol.console", free_port())
        with enrolling:
            async with httpx.AsyncClient(base_url=enrolling.kiosk_url, timeout=60) as client:
                kiosk = Kiosk(client)
                await wait_until(
                    lambda: shows(kiosk, lambda s: "first_boot" in s), timeout=guard, interval=1
                )
                qr = vm_qr(fleet, created["qr_text"])
                await client.post("/api/enrolment/scan", json={"text": qr})
                await wait_until(lambda: shows(kiosk, staff_ready), timeout=guard, interval=1)
                await kiosk.post("signin", {"employee_id": store.cashier, "pin": PIN})
                await kiosk.post("shift/open", {"amount_minor": 10000})
                await wait_until(kiosk.scanned, timeout=guard, interval=1)
                await kiosk.sell_milk(scanned=True)  # the shift and the catalog are ready
        device_id = (await fleet.enrolment(created["enrolment"]["id"]))["device_id"]
        timed = ApplianceVM(disk, efivars, work / "timed.console", free_port())
        with timed:
            async with httpx.AsyncClient(base_url=timed.kiosk_url, timeout=60) as client:
                kiosk = Kiosk(client)
                await wait_until(lambda: shows(kiosk, staff_ready), timeout=guard, interval=0.2)
                ready = time.monotonic() - timed.started
                await kiosk.post("signin", {"employee_id": store.cashier, "pin": PIN})
                await kiosk.sell_milk()
                await wait_until(lambda: replicated(fleet, device_id, 2), timeout=guard)
                sale = time.monotonic() - timed.started
    return ready, sale


def fallback_time(image: BuiltImage, work: Path) -> float:
    """Seconds from power on with a broken slot B to slot A's status line saying reverted=b."""
    disk, efivars = fresh_disk(image, work)
    install_into_slot_b(image, disk, broken_system(work))
    vm = ApplianceVM(disk, efivars, work / "fallback.console", free_port())
    with vm:
        status = vm.wait_for_status(boots=2)
        seconds = time.monotonic() - vm.started
    if status.get("slot") != "a" or status.get("reverted") != "b":
        raise SystemExit(f"no fallback: {status}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=("amd64", "arm64"), default="amd64")
    parser.add_argument("--cold", action="store_true", help="also build once into an empty cache")
    parser.add_argument(
        "--cold-from",
        type=Path,
        help="instead of --cold: a build already made from an empty cache (its manifest's"
        " build_seconds; a cold arm64 build is long enough to be made once, on its own)",
    )
    parser.add_argument(
        "--json", type=Path, help="default bench/results/image.json, image-arm64.json for arm64"
    )
    parser.add_argument(
        "--no-boot", action="store_true", help="build and sizes only (no qemu boots)"
    )
    add_rounds_argument(parser)
    args = parser.parse_args()
    if args.json is None:
        suffix = "" if args.arch == "amd64" else f"-{args.arch}"
        args.json = ROOT / f"bench/results/image{suffix}.json"
    accel = "kvm" if kvm_runs_uefi() else "tcg"
    rounds = Rounds(f"image ({args.arch}, boots under {accel})", rounds=args.rounds)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        work = Path(tmp)
        if args.cold:
            cold_cache = work / "cold-cache"
            cold_cache.mkdir()
            seconds, _ = build(args.arch, work / "cold", cold_cache)
            rounds.add("build_cold_s", seconds, label="build, cold cache", unit="s")
            shutil.rmtree(cold_cache)
        image: BuiltImage | None = None
        for n in rounds.each():
            out = work / f"round-{n}"
            seconds, image = build(args.arch, out, CACHE)
            rounds.add("build_warm_s", seconds, label="build, warm cache", unit="s")
            disk = image.disk
            rounds.add("raw_gb", disk.stat().st_size / GB, label="image raw", unit="GB", digits=2)
            rounds.add(
                "zstd_gb",
                compressed_bytes(disk) / GB,
                label="image zstd -3",
                unit="GB",
                goal=Goal("<", 1.0) if args.arch == "amd64" else None,
                digits=3,
            )
            if args.arch == "amd64" and not args.no_boot:
                kiosk, settled = boot_times(image, out)
                rounds.add(
                    "boot_kiosk_s", kiosk, label="boot to kiosk", unit="s", goal=Goal("<", 20)
                )
                rounds.add("boot_status_s", settled, label="boot to status line", unit="s")
                ready, sale = asyncio.run(first_sale_times(image, out))
                rounds.add("enrolled_ready_s", ready, label="enrolled: boot to ready", unit="s")
                rounds.add(
                    "first_sale_s",
                    sale,
                    label="enrolled: boot to sale in the cloud",
                    unit="s",
                    goal=Goal("<", 30),
                )
                rounds.add(
                    "fallback_s",
                    fallback_time(image, out),
                    label="broken B -> back on A",
                    unit="s",
                )
            if n < rounds.rounds:
                shutil.rmtree(out)
    if args.cold_from:  # read last: the cold build may still be finishing when the bench starts
        cold = BuiltImage(
            args.cold_from, json.loads((args.cold_from / "manifest.json").read_text())
        )
        if cold.arch != args.arch:
            raise SystemExit(f"{args.cold_from} is an {cold.arch} build, not {args.arch}")
        seconds = float(cold.manifest["build_seconds"])  # type: ignore[arg-type]
        rounds.add("build_cold_s", seconds, label="build, cold cache", unit="s")
    print(rounds.table())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rounds.as_json(arch=args.arch, accel=accel), indent=2) + "\n")


if __name__ == "__main__":
    main()
