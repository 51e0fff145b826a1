"""Blind-index terms: what a profile is found by, what a search text looks for, masked names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_plane.customers.blind_index import (
    MIN_PREFIX,
    masked_name,
    name_terms,
    name_tokens,
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
        pytest.param("anna kow", "name", {"w:anna kow"}, id="whole-word-then-prefix"),
        pytest.param("Kow", "name", {"n:kow"}, id="one-prefix"),
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


def test_a_name_has_each_whole_word_paired_with_the_beginnings_of_the_others() -> None:
    pairs = {term for term in name_terms("Anna Kowalska") if term.startswith("w:")}

    assert pairs == {f"w:anna {'kowalska'[:n]}" for n in range(2, 9)} | {
        "w:kowalska an", "w:kowalska ann", "w:kowalska anna"
    }  # fmt: skip


def test_words_typed_before_the_last_are_whole_the_last_begun_and_prefixes_are_the_fallback() -> (
    None
):
    query = query_terms("Maria Anna Kowalczykowna")

    assert query is not None
    assert set(query.terms) == {"w:maria anna", "w:maria kowalczykown", "w:anna kowalczykown"}
    assert set(query.prefix_terms or ()) == {"n:maria", "n:anna", "n:kowalczykown"}  # 12 at most
    assert query_terms("Maria") == query_terms("maria ")  # one word: its prefix only
    assert query_terms("Maria").prefix_terms is None  # type: ignore[union-attr]


words = st.text(alphabet="abcłüéz", min_size=MIN_PREFIX, max_size=15)  # one letter: no word


@given(
    name=st.lists(words, min_size=2, max_size=4),
    data=st.data(),
)
def test_a_name_typed_as_at_a_till_is_found_by_its_pairs_and_its_prefixes(
    name: list[str], data: st.DataObject
) -> None:
    """Some of a name's words in any order, each whole but the last, which may be begun: every
    term the search asks for is one the profile has (the database matches hashes of these)."""
    full = " ".join(name)
    tokens = name_tokens(full)
    positions = data.draw(
        st.lists(st.sampled_from(range(len(tokens))), min_size=2, max_size=len(tokens), unique=True)
    )
    typed = [tokens[i] for i in positions]
    last = typed[-1][: data.draw(st.integers(MIN_PREFIX, len(typed[-1])))]
    query = query_terms(" ".join([*typed[:-1], last]).upper())

    assert query is not None
    assert query.prefix_terms is not None
    assert query.terms <= name_terms(full)
    assert query.prefix_terms <= name_terms(full)


@given(name=st.lists(words, min_size=2, max_size=3), cut=st.integers(1, 14))
def test_a_begun_word_before_the_last_finds_nothing_by_pairs_only_by_prefixes(
    name: list[str], cut: int
) -> None:
    """``ann kow`` for Anna Kowalska: no pair term matches (so the search falls back)."""
    full = " ".join(name)
    tokens = name_tokens(full)
    begun = tokens[0][:cut]
    if len(begun) < MIN_PREFIX or begun in tokens:
        return  # not a begun word
    query = query_terms(f"{begun} {tokens[1]}")

    assert query is not None
    assert query.prefix_terms is not None
    assert not query.terms <= name_terms(full)
    assert query.prefix_terms <= name_terms(full)
