"""Blind-index terms: what a profile is found by, what a search text looks for, masked names."""

from __future__ import annotations

import pytest

from control_plane.customers.blind_index import (
    masked_name,
    profile_terms,
    query_terms,
)


def test_a_profile_is_found_by_name_prefixes_email_and_phone_digits() -> None:
    terms = profile_terms(
        name="Łucja Müller-Kowalska", email=" Lucja@Example.ORG ", phone="+48 601 234 567"
    )

    assert {"n:lu", "n:lucja", "n:mu", "n:muller", "n:kowalska", "n:ko"} <= terms
    assert "e:lucja@example.org" in terms
    assert "p:601234567" in terms
    assert not any(term.startswith("n:") and len(term) < 4 for term in terms)  # 2 letters at least


@pytest.mark.parametrize(
    ("typed", "kind", "terms"),
    [
        pytest.param("anna kow", "name", {"n:anna", "n:kow"}, id="name-prefixes"),
        pytest.param("MÜLLER", "name", {"n:muller"}, id="accents-and-case"),
        pytest.param("Anna.K@Example.org", "email", {"e:anna.k@example.org"}, id="email"),
        pytest.param("+41 79 555 01 01", "phone", {"p:795550101"}, id="international"),
        pytest.param("079 555 01 01", "phone", {"p:795550101"}, id="national"),
        pytest.param("0041795550101", "phone", {"p:795550101"}, id="with-00"),
        pytest.param("Wolfeschlegelsteinhausen", "name", {"n:wolfeschlege"}, id="long-token-cut"),
    ],
)
def test_a_search_text_looks_for_the_terms_its_profile_has(
    typed: str, kind: str, terms: set[str]
) -> None:
    query = query_terms(typed)

    assert query is not None
    assert (query.kind, set(query.terms)) == (kind, terms)


@pytest.mark.parametrize("typed", ["a", "  ", "12345", "-"])
def test_too_little_to_search_for_is_none(typed: str) -> None:
    assert query_terms(typed) is None


@pytest.mark.parametrize(
    ("name", "shown"),
    [("Anna Kowalska", "Anna K."), ("Anna Maria von Berg", "Anna B."), ("Cher", "Cher"), ("", "–")],
)
def test_a_register_sees_a_masked_name(name: str, shown: str) -> None:
    assert masked_name(name) == shown
