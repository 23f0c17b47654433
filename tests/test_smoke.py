from __future__ import annotations

from tests.conftest import Link


def test_select_jpki_and_query_auth_pin(link: Link) -> None:
    assert link.sw("00A4040C0AD392F000260100000001") == 0x9000
    assert link.sw("00200098") == 0x63C3
