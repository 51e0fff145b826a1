"""The balenaCloud deployer: pin each wave's devices to the release, read their status back.

How it works: a tenant whose appliances run on balenaOS names its balenaCloud fleet
(``STOREFLEET_BALENA_FLEETS``, tenant → fleet slug); its rollouts go through balena-sdk instead
of MQTT. A storefleet release version is the balena release of that fleet whose ``raw_version``
it is (``balena push --release-tag``/``balena deploy`` with the same version), and a storefleet
device is the fleet's device whose ``device_name`` is its id (balena names are renamable and
not unique: a name held by two devices is refused for both).

- :meth:`BalenaDeployer.deliver` finds the release's id and the page's devices in the fleet
  and pins them (``PATCH /v7/device?$filter=id in (…)`` with ``is_pinned_on__release``);
  a device not in the fleet is refused with the reason;
- :meth:`BalenaDeployer.observe` reads the devices' ``is_running__release``,
  ``is_pinned_on__release``, ``overall_status`` and ``overall_progress`` at most every
  ``poll_s`` per rollout and maps them to the rollout's states (:data:`STATUS_STATES`);
- :meth:`BalenaDeployer.roll_back` pins the device to its previous release when the fleet has
  it, else lets it track the fleet's release again.

The SDK is synchronous (``requests``): every call runs in a worker thread. Its errors become the
deployer's (:mod:`.deployers`): 401/403, an unknown fleet or release are refusals (the rollout
pauses with what to fix); no answer, 429 and 5xx are unavailability (tried again next tick).
balena-sdk is the optional extra ``storefleet[balena]``, imported when a deployer is made.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import RowMapping

from control_plane.rollouts.deployers import (
    Delivery,
    Deployer,
    DeployerRefused,
    DeployerUnavailable,
    Observed,
)
from control_plane.settings import SettingsRefused, describe

T = TypeVar("T")

#: Devices named in one query (balena-sdk's own chunk for string ids is 200).
NAMES_PER_QUERY = 100
#: What is read of a device.
FIELDS = [
    "id",
    "uuid",
    "device_name",
    "is_online",
    "is_running__release",
    "is_pinned_on__release",
    "overall_status",
    "overall_progress",
]

#: balena's ``overall_status`` of a device pinned to the release and not yet running it → the
#: rollout's state (None: no news; its deadline decides). Running it, "operational" is
#: ``succeeded`` and anything else ``confirming`` (a container down is "reduced-functionality":
#: it never succeeds, and times out).
STATUS_STATES: dict[str, str | None] = {
    "updating": "downloading",
    "operational": "notified",  # still on the old release: the supervisor has yet to start
    "configuring": "notified",
    "post-provisioning": "notified",
    "reduced-functionality": "notified",
    "disconnected": None,
    "inactive": "failed",
}


class BalenaSettings(BaseSettings):
    """Where balenaCloud is, how to sign in, and which tenants' fleets it runs."""

    model_config = SettingsConfigDict(
        env_prefix="STOREFLEET_BALENA_", env_file=None, extra="ignore"
    )

    api_url: str = Field(
        "https://api.balena-cloud.com/", description="balenaCloud's API (or openBalena's)"
    )
    token: SecretStr | None = None
    fleets: dict[str, str] = Field(
        default_factory=dict, description="tenant id → balenaCloud fleet slug (org/fleet)"
    )
    poll_s: float = Field(30.0, gt=0, description="seconds between status reads per rollout")

    @model_validator(mode="after")
    def _token_for_fleets(self) -> BalenaSettings:
        if self.fleets and self.token is None:
            raise ValueError(
                "STOREFLEET_BALENA_FLEETS names fleets but STOREFLEET_BALENA_TOKEN is not set: "
                "set it to a balenaCloud API key of a member of those fleets"
            )
        return self


def load_balena_settings() -> BalenaSettings:
    """The settings from the environment, or :class:`SettingsRefused` saying what to set."""
    try:
        return BalenaSettings()
    except ValidationError as err:
        raise SettingsRefused(describe(err, BalenaSettings)) from err


def balena_deployers(settings: BalenaSettings) -> dict[str, Deployer]:
    """One deployer per tenant that names a fleet (none: every rollout goes the native way)."""
    if not settings.fleets or settings.token is None:
        return {}
    token = settings.token.get_secret_value()
    return {
        tenant: BalenaDeployer(
            fleet=fleet, api_url=settings.api_url, token=token, poll_s=settings.poll_s
        )
        for tenant, fleet in settings.fleets.items()
    }


@dataclass(frozen=True, slots=True)
class _Device:
    id: int
    uuid: str
    name: str
    online: bool
    running: int | None
    pinned: int | None
    status: str
    progress: int | None


def _navigation(value: Any) -> int | None:
    if isinstance(value, dict):
        return int(value["__id"])
    return None if value is None else int(value)


def observed_state(device: _Device | None, release_id: int, version: str, fleet: str) -> Observed:
    """The rollout's state of one device read from balena (``device_id`` left empty)."""
    if device is None:
        return Observed(device_id="", state="failed", detail=f"balena: it left fleet {fleet}")
    if device.pinned != release_id:
        return Observed(
            device_id="",
            state="failed",
            detail="balena: pinned to another release (or unpinned) outside this rollout",
        )
    if device.running == release_id:
        if device.status == "operational":
            return Observed(device_id="", state="succeeded", detail=f"balena: running {version}")
        return Observed(
            device_id="",
            state="confirming",
            detail=f"balena: running {version} but {device.status}",
        )
    state = STATUS_STATES.get(device.status)
    if state == "notified" and not device.online:
        state = None
    detail = f"balena: {device.status}"
    if device.progress is not None:
        detail += f", {device.progress} %"
    return Observed(device_id="", state=state or "", detail=detail)


class BalenaDeployer:
    """One tenant's balenaCloud fleet, through balena-sdk."""

    name = "balena"
    observes = True

    def __init__(
        self,
        *,
        fleet: str,
        api_url: str,
        token: str,
        poll_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.fleet = fleet
        self.poll_s = poll_s
        self.clock = clock
        self._sdk = _sdk(api_url, token)
        self._release_ids: dict[str, int] = {}
        self._polled: dict[str, float] = {}

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run one SDK call in a thread; its errors as the deployer's."""
        from balena import exceptions  # the optional extra (see _sdk)
        from requests import RequestException  # balena-sdk's HTTP client

        try:
            return await asyncio.to_thread(fn, *args)
        except exceptions.RequestError as err:
            status = int(err.status_code or 0)
            if status in {401, 403}:
                raise DeployerRefused(
                    self.name,
                    f"balenaCloud refused the token ({status}): set STOREFLEET_BALENA_TOKEN to "
                    f"an API key of a member of fleet {self.fleet}",
                ) from err
            if status == 429 or status >= 500:
                raise DeployerUnavailable(self.name, f"balenaCloud answered {status}") from err
            raise DeployerRefused(
                self.name, f"balenaCloud refused the request ({status}): {str(err.body)[:200]}"
            ) from err
        except exceptions.ApplicationNotFound as err:
            raise DeployerRefused(
                self.name,
                f"balenaCloud has no fleet {self.fleet!r} for this token: check "
                "STOREFLEET_BALENA_FLEETS",
            ) from err
        except exceptions.DeviceNotFound as err:  # removed between our read and the pin
            raise DeployerUnavailable(self.name, f"a device left fleet {self.fleet}") from err
        except RequestException as err:
            raise DeployerUnavailable(self.name, f"balenaCloud did not answer: {err}") from err

    async def _release_id(self, version: str) -> int:
        """The fleet's successful release whose raw_version is ``version``."""
        from balena import exceptions  # the optional extra (see _sdk)

        if version not in self._release_ids:
            get = self._sdk.models.release.get
            try:
                release = await self._call(
                    get,
                    {"application": self.fleet, "raw_version": version},
                    {"$select": ["id", "status"]},
                )
            except exceptions.ReleaseNotFound as err:
                raise DeployerRefused(
                    self.name,
                    f"fleet {self.fleet} has no release {version}: push it to balenaCloud "
                    f"with that version (balena deploy --release-tag, raw_version {version})",
                ) from err
            if release["status"] != "success":
                raise DeployerRefused(
                    self.name,
                    f"release {version} of fleet {self.fleet} is {release['status']}, not success",
                )
            self._release_ids[version] = int(release["id"])
        return self._release_ids[version]

    async def _devices(self, names: Sequence[str]) -> dict[str, list[_Device]]:
        """The fleet's devices with these names, by name (a name may be held twice)."""
        found: dict[str, list[_Device]] = {}
        get_all = self._sdk.models.device.get_all_by_application
        for start in range(0, len(names), NAMES_PER_QUERY):
            page = list(names[start : start + NAMES_PER_QUERY])
            rows: list[dict[str, Any]] = await self._call(
                get_all,
                self.fleet,
                {"$select": FIELDS, "$filter": {"device_name": {"$in": page}}},
            )
            for row in rows:
                device = _Device(
                    id=int(row["id"]),
                    uuid=str(row["uuid"]),
                    name=str(row["device_name"]),
                    online=bool(row["is_online"]),
                    running=_navigation(row["is_running__release"]),
                    pinned=_navigation(row["is_pinned_on__release"]),
                    status=str(row["overall_status"]),
                    progress=row["overall_progress"],
                )
                found.setdefault(device.name, []).append(device)
        return found

    def _refusal(self, device_id: str, matches: list[_Device]) -> str | None:
        if not matches:
            return (
                f"balena: no device named {device_id} in fleet {self.fleet} "
                "(name the balena device after its storefleet id)"
            )
        if len(matches) > 1:
            return f"balena: {len(matches)} devices are named {device_id} in fleet {self.fleet}"
        return None

    async def deliver(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> Delivery:
        """Pin the page's devices to the release; refuse those the fleet does not have."""
        release_id = await self._release_id(rollout["release_version"])
        names = [row["device_id"] for row in rows]
        found = await self._devices(names)
        refused: dict[str, str] = {}
        pinned: dict[str, str] = {}
        for name in names:
            why = self._refusal(name, found.get(name, []))
            if why is None:
                pinned[name] = found[name][0].uuid
            else:
                refused[name] = why
        if pinned:
            await self._call(
                self._sdk.models.device.pin_to_release, list(pinned.values()), release_id
            )
        return Delivery(delivered=list(pinned), refused=refused)

    async def observe(self, rollout: RowMapping, rows: Sequence[RowMapping]) -> list[Observed]:
        """The devices' states, read at most every ``poll_s`` per rollout."""
        now = self.clock()
        last = self._polled.get(rollout["id"])
        if last is not None and now - last < self.poll_s:
            return []
        self._polled[rollout["id"]] = now
        version = rollout["release_version"]
        release_id = await self._release_id(version)
        names = [row["device_id"] for row in rows]
        found = await self._devices(names)
        out: list[Observed] = []
        for name in names:
            matches = found.get(name, [])
            seen = observed_state(
                matches[0] if len(matches) == 1 else None, release_id, version, self.fleet
            )
            if seen.state:
                out.append(Observed(device_id=name, state=seen.state, detail=seen.detail))
        return out

    async def roll_back(self, rollout: RowMapping, row: RowMapping) -> str:
        """Pin the device to its previous release if the fleet has it, else let it track the
        fleet's release again."""
        matches = (await self._devices([row["device_id"]])).get(row["device_id"], [])
        why = self._refusal(row["device_id"], matches)
        if why is not None:
            return f"no rollback: {why}"
        uuid = matches[0].uuid
        previous = row["previous_release"]
        if previous and previous != rollout["release_version"]:
            try:
                release_id = await self._release_id(previous)
            except DeployerRefused:
                pass
            else:
                await self._call(self._sdk.models.device.pin_to_release, [uuid], release_id)
                return f"rolled back: pinned to {previous} on balenaCloud"
        await self._call(self._sdk.models.device.track_application_release, [uuid])
        return (
            f"rolled back: tracks fleet {self.fleet}'s release again "
            f"(its previous release {previous or '(unknown)'} is not in the fleet)"
        )


def _sdk(api_url: str, token: str) -> Any:
    """A balena-sdk client on ``api_url``, in memory (no settings file), signed in with ``token``.

    The SDK derives its endpoints from ``balena_host`` when it is made; its ``api_endpoint``
    setting is set afterwards and its OData client and models are made again on it (the SDK
    reads the endpoint only when they are made).
    """
    try:
        import balena  # the optional extra: only balena tenants need it
        from balena.auth import Auth
        from balena.models import Models
        from balena.pine import PineClient
    except ImportError as err:
        raise DeployerRefused(
            "balena",
            "balena-sdk is not installed: pip install 'storefleet[balena]' on the control plane",
        ) from err
    sdk = balena.Balena({"data_directory": False, "retry_rate_limited_request": False})
    sdk.settings.set("api_endpoint", api_url if api_url.endswith("/") else f"{api_url}/")
    sdk.pine = PineClient(sdk.settings, balena.__version__)
    sdk.auth = Auth(sdk.pine, sdk.settings)
    sdk.models = Models(sdk.pine, sdk.settings)
    sdk.auth.login_with_token(token)
    return sdk
