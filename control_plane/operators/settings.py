"""Settings of operator authentication, from ``STOREFLEET_AUTH_*`` variables.

Their own object beside `ControlPlaneSettings` (like provisioning's) so the domain can be built,
tested and benchmarked without the rest of the control plane. Defaults follow the issue's seeds:
100 requests per minute per client. Passwords: argon2id with OWASP's recommended parameters
(19 MiB, 2 passes, 1 lane): ~60 ms per login on a 2-core node, where RFC 9106's second profile
(64 MiB, 3 passes, 4 lanes) cost ~0.5-0.65 s and let a few concurrent logins starve the API.
Hashes made with other parameters still verify and are rehashed at the next login.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """Validated at start; an error names the variable to set."""

    model_config = SettingsConfigDict(env_prefix="STOREFLEET_AUTH_", env_file=None, extra="ignore")

    session_idle_minutes: float = Field(default=30, gt=0, description="idle session expiry")
    session_absolute_hours: float = Field(default=12, gt=0, description="absolute session expiry")
    totp_pending_minutes: float = Field(
        default=5, gt=0, description="time between a right password and the TOTP code"
    )
    lockout_failures: int = Field(default=5, ge=1, description="failed logins before a lockout")
    lockout_minutes: float = Field(default=15, gt=0, description="how long a lockout lasts")
    argon2_time_cost: int = Field(default=2, ge=1, description="argon2id passes (OWASP: 2)")
    argon2_memory_kib: int = Field(
        default=19_456, ge=8, description="argon2id memory in KiB (OWASP: 19 MiB)"
    )
    argon2_parallelism: int = Field(default=1, ge=1, description="argon2id lanes (OWASP: 1)")
    api_rate_per_minute: int = Field(default=100, ge=1, description="API requests per client")
    login_rate_per_minute: int = Field(default=100, ge=1, description="login posts per client")
    token_default_days: int = Field(default=90, ge=1, le=3650)
    token_max_days: int = Field(default=365, ge=1, le=3650)
    auth_cache_seconds: float = Field(
        default=5,
        ge=0,
        description=(
            "how long an instance reuses a looked-up session or token before reading it again: "
            "a logout, revocation or role change made on ANOTHER instance takes effect here "
            "within this time (on this instance at once); 0 reads the store on every request"
        ),
    )
    touch_interval_seconds: float = Field(
        default=30,
        ge=0,
        description="write a session's last activity or a token's last use at most this often",
    )

    @property
    def session_idle_ms(self) -> int:
        """Idle expiry in the store's unit."""
        return round(self.session_idle_minutes * 60_000)

    @property
    def session_absolute_ms(self) -> int:
        """Absolute expiry in the store's unit."""
        return round(self.session_absolute_hours * 3_600_000)

    @property
    def totp_pending_ms(self) -> int:
        """How long a half-logged-in admin may take to type the code."""
        return round(self.totp_pending_minutes * 60_000)

    @property
    def lockout_ms(self) -> int:
        """Lockout length in the store's unit."""
        return round(self.lockout_minutes * 60_000)

    @property
    def touch_interval_ms(self) -> int:
        """Write-throttle of activity stamps."""
        return round(self.touch_interval_seconds * 1000)
