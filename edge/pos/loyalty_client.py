"""The register's balance source and customer search: the cloud's device routes.

``GET /api/loyalty/device/customers/{id}`` with the appliance's own assertion (``auth``, as the
catalog sync): the control plane answers its tenant's customer's points, store credit, tier and
offline limits, or 404 when it has no balance for them yet. Anything else — no network, a
refusal, a timeout, an answer that is not a balance — is :class:`CloudUnreachable`: the register
then redeems against the balance it last saw, within the offline limit, and says so.

Search by name, phone or e-mail (``POST /api/customers/lookup``, the customers domain's route)
answers pseudonymous ids and masked names only; it needs the network, and says so when there is
none (a card scan works offline).
"""

from __future__ import annotations

import logging
from typing import Any, Self

import httpx

from edge.checkout.loyalty import KnownBalance
from edge.enrolment.errors import NotEnrolled
from edge.pos.errors import NotAllowed
from edge.pos.loyalty_desk import CloudUnreachable
from edge.pos.metrics import STALE_CONNECTION_RETRIES

log = logging.getLogger(__name__)

#: What the cashier reads when the search cannot reach the cloud.
OFFLINE_SEARCH = "Customer search needs the network: scan the customer's card instead."
#: What the cashier reads when the cloud finds the text too short to search by.
VAGUE_SEARCH = (
    "Type more to search: 2 letters of a name, 6 digits of a phone number or a whole e-mail."
)


#: The cloud's answers to a text it cannot search by: too little of it (its problem
#: ``customer_search_too_vague``), or none at all (the body's validation).
_TOO_VAGUE = (httpx.codes.BAD_REQUEST, httpx.codes.UNPROCESSABLE_ENTITY)


class SearchOffline(NotAllowed):
    """The search could not ask the cloud; a card scan still works (its own code for the screen)."""

    code = "customer_search_offline"

    def __init__(self) -> None:
        super().__init__(OFFLINE_SEARCH)


class SearchTooOften(NotAllowed):
    """The cloud asks the register to wait (its per-client request budget, HTTP 429): the
    network is up, so the cashier is told to try again, not that it is down."""

    code = "customer_search_busy"

    def __init__(self, retry_after: str | None) -> None:
        wait = f"in {retry_after} s" if retry_after and retry_after.isdigit() else "in a minute"
        super().__init__(f"Too many searches just now: search again {wait}, or scan the card.")


class SearchTooVague(NotAllowed):
    """The cloud refuses a search text that would match too many customers."""

    code = "customer_search_vague"

    def __init__(self) -> None:
        super().__init__(VAGUE_SEARCH)


def balance_from_json(body: Any) -> KnownBalance:
    """The route's answer as the register's balance (fresh: the cloud said it just now)."""
    if not isinstance(body, dict):
        raise ValueError("a balance is a JSON object")
    return KnownBalance(
        customer_id=str(body["customer_id"]),
        points=int(body["points"]),
        lifetime_points=int(body["lifetime_points"]),
        store_credit_minor=int(body["store_credit_minor"]),
        fresh=True,
        offline_points_left=int(body["offline_redeem_limit_points"]),
        offline_credit_left_minor=int(body["offline_store_credit_limit_minor"]),
        cloud_seq=int(body.get("device_seq") or 0),
    )


class CloudBalances:
    """Fetches balances from the control plane (a :class:`~edge.pos.loyalty_desk.BalanceSource`).

    One HTTP client for the register's life, made at the first call: a client made per call
    loaded the CA bundle into a new TLS context each time (about 96 ms under load here, most of
    a search's time at the till) and opened a new connection for each. ``aclose`` (or ``async
    with``) closes it; a closed one is made again at the next call.
    """

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.transport = transport
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None or self._http.is_closed:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self.timeout,
                transport=self.transport,
                auth=self.auth,
            )
        return self._http

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The request, sent again once when the kept connection turned out closed.

        The cloud closes a connection idle for a few seconds (uvicorn's keep-alive), and a
        cashier's searches are minutes apart: a request can meet a connection the server closed
        just then (seen as "needs the network" at the till, one search in a few hundred). Both
        routes only read (the lookup is a POST so that no phone number is in a URL), so sending
        again on a fresh connection is safe; a timeout is not retried (the network is slow)."""
        try:
            return await self._client().request(method, url, **kwargs)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as err:
            STALE_CONNECTION_RETRIES.inc()
            log.info("loyalty: %s %s met a closed connection (%s); sending again", method, url, err)
            return await self._client().request(method, url, **kwargs)

    async def aclose(self) -> None:
        """Close the client and its connections."""
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def fetch(self, customer_id: str) -> KnownBalance | None:
        """The customer's balance; None when the cloud has none; CloudUnreachable otherwise."""
        try:
            response = await self._send("GET", f"/api/loyalty/device/customers/{customer_id}")
            if response.status_code == httpx.codes.NOT_FOUND:
                return None
            response.raise_for_status()
            return balance_from_json(response.json())
        except (httpx.HTTPError, NotEnrolled, ValueError, KeyError, TypeError) as err:
            log.info("loyalty: no balance from %s (%s); offline rules apply", self.base_url, err)
            raise CloudUnreachable(customer_id) from err

    async def search(self, text: str) -> list[tuple[str, str]]:
        """Customers matching ``text``: (id, masked name); NotAllowed when offline or refused."""
        try:
            response = await self._send("POST", "/api/customers/lookup", json={"q": text})
        except (httpx.HTTPError, NotEnrolled) as err:
            log.info("loyalty: customer search cannot reach %s (%s)", self.base_url, err)
            raise SearchOffline from err
        if response.status_code in _TOO_VAGUE:
            raise SearchTooVague
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            raise SearchTooOften(response.headers.get("retry-after"))
        if response.status_code != httpx.codes.OK:
            log.warning(
                "loyalty: customer search refused by %s (HTTP %s): check the register's"
                " enrolment and the control plane's customers key",
                self.base_url,
                response.status_code,
            )
            raise SearchOffline
        try:
            found = response.json()["customers"]
            return [(str(c["id"]), str(c["display_name"])) for c in found]
        except (ValueError, KeyError, TypeError) as err:
            log.warning("loyalty: customer search at %s answered no list (%s)", self.base_url, err)
            raise SearchOffline from err
