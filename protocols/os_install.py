"""``os.install``: the operator's request that an appliance install a local OS image, and the
request file the agent hands the image's root helper.

How it works (images/README.md, "OS updates with fallback"): the image file is already on the
appliance's data partition, in ``<data_dir>/os-images/<image>`` with its dm-verity root hash
beside it (``<image>.verity``, as ``images/build`` writes ``system-<arch>.verity``). The command
names it and says its size and sha256 (:class:`OsInstallArgs`); the agent, which runs
unprivileged, checks both and writes :func:`request_text` to ``<data_dir>/os-install/request``.
A root path unit (``storefleet-os-install.path``) starts the helper, which checks the request
again (the agent is not trusted with root's decision), has ``slot install`` write the inactive
system slot, check the slot's bytes against the sha256 and arm one boot try, then reboots when
asked. How that try ends comes back as ``os.update`` events (:mod:`edge.agent.os_update`).

The request file is ``key=value`` lines, so a POSIX shell reads it without a parser; every
value is a word of ``[A-Za-z0-9._-]`` (:data:`IMAGE_NAME_PATTERN`, hex, digits) and the helper
refuses any other.
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from protocols.limits import INT64_MAX

#: An image's file name in the images directory: no path, no hidden file, no ``..``.
IMAGE_NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
#: Where an image lives under the agent's data directory, and where the request goes.
IMAGES_DIR: Final = "os-images"
REQUEST_DIR: Final = "os-install"
REQUEST_FILE: Final = "request"
#: The dm-verity root hash beside an image (``slot install`` reads it).
VERITY_SUFFIX: Final = ".verity"

ImageName = Annotated[str, StringConstraints(pattern=IMAGE_NAME_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(pattern=SHA256_PATTERN)]


class OsInstallArgs(BaseModel):
    """The body of ``os.install``: which image, and what it must be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: ImageName
    size: Annotated[int, Field(strict=True, ge=1, le=INT64_MAX)]
    sha256: Sha256Hex
    #: reboot into the new slot at once (its one try); False: at the next reboot
    reboot: bool = True


def request_text(args: OsInstallArgs, *, install: str) -> str:
    """The request file's lines for the root helper (``libexec/os-install``); ``install`` names
    this request in the helper's outcome."""
    word = "".join(c for c in install if c.isalnum() or c in "._-")[:64] or "unknown"
    return (
        f"id={word}\nimage={args.image}\nsize={args.size}\nsha256={args.sha256}\n"
        f"reboot={1 if args.reboot else 0}\n"
    )
