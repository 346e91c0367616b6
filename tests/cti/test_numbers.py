"""Japanese number normalisation (C2)."""

from __future__ import annotations

import pytest

from cti_bridge.numbers import (
    clean_name,
    dialable,
    display_national,
    last8,
    normalise_caller,
    normalise_stored,
    withheld_from_text,
)


@pytest.mark.parametrize(
    ("raw", "e164", "display"),
    [
        ("0312345678", "+81312345678", "03-1234-5678"),
        ("03-1234-5678", "+81312345678", "03-1234-5678"),
        ("０３ー１２３４ー５６７８", "+81312345678", "03-1234-5678"),
        ("０３－１２３４－５６７８", "+81312345678", "03-1234-5678"),
        ("03‐1234‐5678", "+81312345678", "03-1234-5678"),
        ("03 1234 5678", "+81312345678", "03-1234-5678"),
        ("(03) 1234-5678", "+81312345678", "03-1234-5678"),
        ("+81312345678", "+81312345678", "03-1234-5678"),
        ("+81 3-1234-5678", "+81312345678", "03-1234-5678"),
        ("＋８１３１２３４５６７８", "+81312345678", "03-1234-5678"),
        ("010-81-3-1234-5678", "+81312345678", "03-1234-5678"),
        ("0952326611", "+81952326611", "0952-32-6611"),
        ("090-1234-5678", "+819012345678", "090-1234-5678"),
        ("0120-123-456", "+81120123456", "0120-123-456"),
        ("05012345678", "+815012345678", "050-1234-5678"),
        ("+1 415 555 2671", "+14155552671", "+1 415-555-2671"),
        ("010-1-415-555-2671", "+14155552671", "+1 415-555-2671"),
    ],
)
def test_valid_numbers(raw: str, e164: str, display: str) -> None:
    caller = normalise_caller(raw)
    assert caller.number_e164 == e164
    assert caller.withheld == ""
    assert caller.display == display


@pytest.mark.parametrize(
    ("raw", "withheld", "display"),
    [
        ("P", "private", "非通知"),
        ("p", "private", "非通知"),
        ("anonymous", "private", "非通知"),
        ("Anonymous", "private", "非通知"),
        ("非通知", "private", "非通知"),
        ("O", "out_of_area", "表示圏外"),
        ("S", "out_of_area", "表示圏外"),
        ("Interaction with other service", "out_of_area", "表示圏外"),
        ("C", "payphone", "公衆電話"),
        ("Coin line/payphone", "payphone", "公衆電話"),
        ("E", "error", "受信エラー"),
        ("", "unavailable", "通知不可"),
        ("   ", "unavailable", "通知不可"),
        ("<unknown>", "unavailable", "通知不可"),
        ("Unavailable", "unavailable", "通知不可"),
    ],
)
def test_withheld_reasons(raw: str, withheld: str, display: str) -> None:
    caller = normalise_caller(raw)
    assert (caller.number_e164, caller.withheld, caller.display) == ("", withheld, display)
    assert withheld_from_text(raw) == (withheld if raw.strip() else "")


def test_none_is_unavailable() -> None:
    assert normalise_caller(None).withheld == "unavailable"


@pytest.mark.parametrize("raw", ["201", "110", "12345", "1840312345678", "0000"])
def test_invalid_numbers_keep_digits_without_e164(raw: str) -> None:
    caller = normalise_caller(raw)
    assert caller.number_e164 == ""
    assert caller.withheld == ""
    assert caller.digits == raw
    assert caller.display == raw


def test_184_186_are_stripped_only_from_stored_numbers() -> None:
    assert normalise_caller("1840312345678").number_e164 == ""
    assert normalise_stored("1840312345678").number_e164 == "+81312345678"
    assert normalise_stored("186-090-1234-5678").number_e164 == "+819012345678"
    assert normalise_stored("１８４０３１２３４５６７８").number_e164 == "+81312345678"
    # 184/186 in front of something that is not a national number stays.
    assert normalise_stored("18412").digits == "18412"


def test_stored_numbers_never_report_withheld() -> None:
    assert normalise_stored("") == normalise_stored(None)
    assert normalise_stored("").withheld == ""
    assert normalise_stored("P").withheld == ""
    assert normalise_stored("03-1234-5678 (自宅)").number_e164 == "+81312345678"


def test_last8_and_display_and_dialable() -> None:
    assert last8("+81312345678") == "12345678"
    assert last8("+819012345678") == "12345678"
    assert last8("201") == "201"
    assert display_national("+81952326611") == "0952-32-6611"
    assert display_national("") == ""
    assert display_national("garbage") == "garbage"
    assert dialable("+81312345678") == "0312345678"
    assert dialable("03-1234-5678") == "0312345678"
    assert dialable("+14155552671") == "01014155552671"
    assert dialable("201") == "201"


def test_clean_name() -> None:
    assert clean_name("ｽｽﾞｷ ﾀﾛｳ") == "スズキ タロウ"
    assert clean_name('"<unknown>"') == ""
    assert clean_name("  YAMADA ") == "YAMADA"
