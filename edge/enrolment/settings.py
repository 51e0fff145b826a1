"""Enrolment settings of the appliance image, from ``STOREFLEET_ENROL_*`` variables.

Only the typed fallback code needs them: the QR code carries the control-plane URL and the CA
fingerprint, a typed code carries neither, so the image must know both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from provisioning.enrolment import ControlPlaneUrl, Fingerprint

DEFAULT_IDENTITY_DIR = Path("/var/lib/storefleet/identity")


class EnrolmentSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_ENROL_", env_file=None, extra="ignore")

    control_plane_url: ControlPlaneUrl
    ca_fingerprint: Annotated[Fingerprint, Field(description="sha256 hex of the fleet root CA")]
    identity_dir: Path = DEFAULT_IDENTITY_DIR
