"""Identity keys and their claims: how "one person, one status" is made to hold.

Two live records are the same person when their children carry the same
document number, or — for children without a document — the same name, sex
and birth date.  That pair is the child's **identity key**
(:func:`identity_key`).  Every registration *claims* its key in the store
(:class:`~studentstatus.ports.IdentityClaims`): the claim adds one to a counter
kept per key and, on a concurrent store, locks that key until the unit of work
ends.  A registration looks for the other records of its key only after its
claim, so whichever of two racing registrations claims second waits for the
first to commit and then finds its record: the database serialises them, not
timing.  The counter also makes the look-up free when nobody ever held the key
(``claimed before == 0``), so neither the online path nor a bulk import needs
an index of the whole store to stay fast.

The store keeps only :func:`claim_key` of an identity key — a 128-bit hash —
never the document number or the name itself.

>>> from datetime import date
>>> from studentstatus.domain.enums import Sex
>>> from studentstatus.domain.model import Child, DocumentKind, IdentityDocument
>>> kid = Child("c1", "王小明", Sex.M, date(2020, 3, 15),
...             IdentityDocument(DocumentKind.RESIDENT, "11010520200315003x"))
>>> identity_key(kid)
('d', '11010520200315003X')
>>> claim_key(identity_key(kid))
'4a9eb50f1a6c5650d1e13dfcf980aaa2'
>>> identity_key(Child("c2", "李小红", Sex.F, date(2021, 5, 1), None))
('i', '李小红', 'F', '2021-05-01')
"""

from __future__ import annotations

import hashlib
import re

from studentstatus.domain.model import Child

__all__ = ["IdentityKey", "claim_key", "compact_number", "identity_key", "is_document_key"]

IdentityKey = tuple[str, ...]
"""``("d", number)`` for a child with a document, ``("i", name, sex, birth date)`` without."""

_SPACES_AND_HYPHENS = re.compile(r"[\s\-]")


def compact_number(text: str) -> str:
    """A document number without spaces or hyphens, upper-cased (the form keys use).

    >>> compact_number("110105 20200315 003x"), compact_number("H-1234567")
    ('11010520200315003X', 'H1234567')
    """
    if text.isalnum():  # no space or hyphen to remove (a validated number)
        return text.upper()
    return _SPACES_AND_HYPHENS.sub("", text).upper()


def identity_key(child: Child) -> IdentityKey:
    """The identity key of ``child`` (see the module docs)."""
    doc = child.document
    if doc is not None and doc.type._value_ != "none" and doc.number:
        return ("d", compact_number(doc.number))
    return ("i", child.name, child.sex._value_, child.birth_date.isoformat())


def is_document_key(key: IdentityKey) -> bool:
    """Whether ``key`` is a document number's (else name + sex + birth date).

    >>> is_document_key(("d", "X")), is_document_key(("i", "a", "M", "2020-01-01"))
    (True, False)
    """
    return key[0] == "d"


def claim_key(key: IdentityKey) -> str:
    """The stored form of an identity key: 32 hex digits of BLAKE2b (128 bits).

    Deterministic in every process and on every platform; the unit separator
    between the parts keeps ``("i", "ab", …)`` and ``("i", "a", "b…")`` apart.

    >>> key = ("i", "李小红", "F", "2021-05-01")
    >>> claim_key(key) == claim_key(tuple(key)), claim_key(key) == claim_key(("i", "李小", "F"))
    (True, False)
    >>> len(claim_key(("d", "X")))
    32
    """
    return hashlib.blake2b("\x1f".join(key).encode(), digest_size=16).hexdigest()
