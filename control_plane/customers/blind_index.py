"""What a customer can be found by, as keyed blind-index terms: e-mail, phone, name prefixes.

How it works: a profile is turned into normalised terms — ``e:`` + the e-mail in lower case,
``p:`` + the phone's last 9 digits (E.164-ish: a national number and its international form
with +41 / 0041 end the same), ``n:`` + every prefix of 2..12 characters of every name token
(case and accents folded), and ``w:`` + a whole name token, a space and each 2..12-character
prefix of another token of the same name (both orders) — and each term is stored only as its
HMAC under the tenant's index key (:meth:`control_plane.customers.keyring.TenantKeys.term`).

A search text is turned into terms the same way: an ``@`` makes it an e-mail, mostly digits a
phone, anything else name tokens. A name of two or more tokens is looked for as typed at a till,
every token but the last a whole word and the last one perhaps begun (``anna kowa``): one ``w:``
term per pair of tokens, each a short posting list, where intersecting the ``n:`` lists of a
common first name and a short prefix reads tens of thousands of rows at 1,000,000 customers
(issue 14). Only when those find no one is every token taken as a prefix (``ann kow``), through
the ``n:`` terms (:attr:`Query.prefix_terms`). The database compares hashes; it never sees the
text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Prefix lengths indexed for name tokens: 2 letters narrow enough, 12 tell any two names apart.
MIN_PREFIX, MAX_PREFIX = 2, 12
#: Digits of a phone number that are compared: the national significant number, about.
PHONE_DIGITS = 9
#: Which terms a profile gets: stored terms written before a change of this are not searched the
#: same way (the benchmark's kept database records it; the service re-indexes older customers).
TERMS_VERSION = 2
#: Fewer digits than this is not a phone number to look up.
MIN_PHONE_DIGITS = 6
_TOKEN = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Case and accents folded: ``Łucja Müller`` and ``lucja muller`` are the same name."""
    decomposed = unicodedata.normalize("NFKD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def name_tokens(name: str) -> list[str]:
    """The words of a name, folded."""
    return _TOKEN.findall(fold(name))


def email_term(email: str) -> str:
    """The term of an e-mail address: trimmed, lower case."""
    return "e:" + email.strip().casefold()


def phone_term(phone: str) -> str | None:
    """The term of a phone number (its last digits), or None when it has too few digits."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    return "p:" + digits[-PHONE_DIGITS:]


def _prefixes(token: str) -> list[str]:
    return [token[:length] for length in range(MIN_PREFIX, min(len(token), MAX_PREFIX) + 1)]


def pair_term(whole: str, begun: str) -> str:
    """The term of a whole name token followed by (the beginning of) another one."""
    return f"w:{whole} {begun[:MAX_PREFIX]}"


def name_terms(name: str) -> set[str]:
    """The ``n:`` prefix terms and ``w:`` pair terms of a name (see the module's docstring)."""
    tokens = name_tokens(name)
    terms = {"n:" + prefix for token in tokens for prefix in _prefixes(token)}
    for i, whole in enumerate(tokens):
        if len(whole) < MIN_PREFIX:
            continue  # a query never has a one-letter token to pair
        for j, other in enumerate(tokens):
            if i != j:
                terms.update(pair_term(whole, prefix) for prefix in _prefixes(other))
    return terms


def profile_terms(*, name: str, email: str | None, phone: str | None) -> set[str]:
    """Every term a profile is found by."""
    terms = name_terms(name)
    if email:
        terms.add(email_term(email))
    if phone and (term := phone_term(phone)) is not None:
        terms.add(term)
    return terms


@dataclass(frozen=True, slots=True)
class Query:
    """A search text as terms that must all match, and what kind of search it is.

    ``prefix_terms``: for a name of two or more tokens, what to look for when ``terms`` (every
    token but the last a whole word) find no one: every token a prefix.
    """

    kind: str  # email | phone | name
    terms: frozenset[str]
    prefix_terms: frozenset[str] | None = None


def query_terms(text: str) -> Query | None:
    """The terms a search text must match; None when it has nothing to look for."""
    text = text.strip()
    if "@" in text:
        return Query("email", frozenset({email_term(text)}))
    digits = re.sub(r"\D", "", text)
    if digits and len(digits) >= len(re.sub(r"[\s+().\-/]", "", text)):
        term = phone_term(text)
        return None if term is None else Query("phone", frozenset({term}))
    tokens = [token for token in name_tokens(text) if len(token) >= MIN_PREFIX]
    if not tokens:
        return None
    prefixes = frozenset("n:" + token[:MAX_PREFIX] for token in tokens)
    if len(tokens) == 1:
        return Query("name", prefixes)
    pairs = frozenset(
        pair_term(whole, tokens[j])
        for i, whole in enumerate(tokens)
        for j in range(i + 1, len(tokens))
    )
    return Query("name", pairs, prefixes)


def masked_name(name: str) -> str:
    """What a register shows of a customer: ``Anna Kowalska`` → ``Anna K.``."""
    words = name.split()
    if not words:
        return "–"
    if len(words) == 1:
        return words[0]
    return f"{words[0]} {words[-1][0].upper()}."
