"""The customers domain's refusals.

CustomersError
├── CustomersOff             503  no master key: set STOREFLEET_CP_CUSTOMERS_MASTER_KEY
├── CustomerKeysUnavailable  503  a sealed key does not open (another master key)
├── CustomerNotFound         404  no such customer in your tenant (another tenant's: the same)
├── CustomerErased           409  the customer's personal data was erased already
├── SearchTooVague           400  a search with nothing to look for (no term of 2+ characters)
└── TenantRequired           400  a platform admin creating a customer names no tenant
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from control_plane.customers.settings import MASTER_KEY_VARIABLE
from control_plane.problems import DomainError


class CustomersError(DomainError):
    """A customers request was refused."""

    reason = "customers_error"


@dataclass(eq=False, kw_only=True)
class CustomersOff(CustomersError):  # noqa: N818 - named in the domain's words
    """The control plane runs without a master key, so it can neither seal nor open profiles."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "customers_off"
    advice = f"set {MASTER_KEY_VARIABLE} (openssl rand -base64 48) and restart the control plane"
    message = f"customer data is off: {MASTER_KEY_VARIABLE} is not set"


@dataclass(eq=False, kw_only=True)
class CustomerKeysUnavailable(CustomersError):  # noqa: N818 - named in the domain's words
    """A tenant or customer key does not open: the control plane has another master key."""

    status = HTTPStatus.SERVICE_UNAVAILABLE
    reason = "customer_keys_unavailable"
    advice = f"start the control plane with the {MASTER_KEY_VARIABLE} the data was sealed with"
    message = "{detail}"

    detail: str


@dataclass(eq=False, kw_only=True)
class CustomerNotFound(CustomersError):  # noqa: N818 - named in the domain's words
    """No customer with this id in the caller's tenant."""

    status = HTTPStatus.NOT_FOUND
    reason = "customer_not_found"
    message = "customer {customer_id!r} does not exist"

    customer_id: str


@dataclass(eq=False, kw_only=True)
class CustomerErased(CustomersError):  # noqa: N818 - named in the domain's words
    """The customer's personal data is gone; only the pseudonymous id and its sales remain."""

    status = HTTPStatus.CONFLICT
    reason = "customer_erased"
    advice = "nothing is left to change or export: the sales stay under the pseudonymous id"
    message = "customer {customer_id!r} was erased"

    customer_id: str


@dataclass(eq=False, kw_only=True)
class SearchTooVague(CustomersError):  # noqa: N818 - named in the domain's words
    """A search text that yields no term to look up."""

    status = HTTPStatus.BAD_REQUEST
    reason = "customer_search_too_vague"
    advice = "type at least 2 letters of a name, 6 digits of a phone number or a whole e-mail"
    message = "nothing to search for in {text_length} character(s)"

    text_length: int


@dataclass(eq=False, kw_only=True)
class TenantRequired(CustomersError):  # noqa: N818 - named in the domain's words
    """A platform admin acts in every tenant, so a new customer must say whose it is."""

    reason = "customer_tenant_required"
    advice = "name the customer's tenant in tenant_id"
    message = "a customer belongs to one tenant: tenant_id is missing"
