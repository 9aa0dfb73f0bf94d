"""Sensitive-data scan: detectors with valid and checksum-failing values, masking, scan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mlwarden.data import fraud, write_table
from mlwarden.data.pii import (
    column_name_kind,
    is_email,
    is_iban,
    is_ip_address,
    is_nl_bsn,
    is_payment_card,
    is_phone,
    is_us_ssn,
    luhn_valid,
    mask,
    pii_findings,
    scan_pii,
)
from mlwarden.exceptions import DataFileError, InvalidParameterError


# ----------------------------------------------------------------------- cards
@pytest.mark.parametrize(
    "number",
    [
        "4242424242424242",  # Visa
        "4242 4242 4242 4242",
        "4111-1111-1111-1111",
        "5555555555554444",  # Mastercard
        "2223003122003222",  # Mastercard 2-series
        "378282246310005",  # American Express
        "6011111111111117",  # Discover
        "3530111333300000",  # JCB
        "30569309025904",  # Diners Club
        "6200000000000005",  # UnionPay
    ],
)
def test_valid_card_numbers(number: str) -> None:
    assert is_payment_card(number)


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424241",  # Luhn fails (last digit off by one)
        "4242 4242 4242 4243",
        "5555555555554440",
        "378282246310006",
        "1234567812345670",  # Luhn passes, but no issuer starts with 1
        "4242424242424",  # 13 digits but Luhn fails
        "42424242424242424242",  # 20 digits
        "4242  4242 4242 4242",  # double separator
        "4242.4242.4242.4242",
    ],
)
def test_invalid_card_numbers(number: str) -> None:
    assert not is_payment_card(number)


def test_luhn() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert not luhn_valid("12a4")


# ----------------------------------------------------------------------- IBANs
@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "DE89370400440532013000",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "be68 5390 0754 7034",
    ],
)
def test_valid_ibans(iban: str) -> None:
    assert is_iban(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 33",  # mod-97 fails
        "DE89370400440532013001",
        "NL91ABNA0417164301",
        "NL91ABNA04171643",  # wrong length for NL
        "ZZ82WEST12345698765432",  # unknown country
    ],
)
def test_invalid_ibans(iban: str) -> None:
    assert not is_iban(iban)


# ----------------------------------------------------------------- national ids
def test_us_ssn_rules() -> None:
    assert is_us_ssn("123-45-6789") and is_us_ssn("536 22 1234")
    for bad in (
        "000-12-3456",  # area 000
        "666-12-3456",  # area 666
        "912-12-3456",  # area 900-999
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "078-05-1120",  # published in advertising
        "123-45 6789",  # mixed separators
        "123456789",  # no separators: not taken for an SSN
    ):
        assert not is_us_ssn(bad), bad


def test_dutch_bsn_eleven_test() -> None:
    assert is_nl_bsn("111222333") and is_nl_bsn("123456782")
    assert not is_nl_bsn("123456789")  # 11-test fails
    assert not is_nl_bsn("111222334")
    assert not is_nl_bsn("000000000") and not is_nl_bsn("12345678")


# -------------------------------------------------------- email, ip and phone
def test_email() -> None:
    assert is_email("john.doe+x@example.co.uk")
    for bad in ("a@b.c", "x..y@example.com", ".a@example.com", "no-at.example.com", "a@b"):
        assert not is_email(bad), bad


def test_ip_addresses() -> None:
    for ok in ("192.168.0.1", "8.8.8.8", "::1", "2001:db8::ff00:42:8329"):
        assert is_ip_address(ok), ok
    for bad in ("256.1.1.1", "1.2.3", "12:30", "1.2.3.4.5", "v1.2"):
        assert not is_ip_address(bad), bad


def test_phone_numbers_need_structure() -> None:
    for ok in (
        "+31612345678",
        "+1 415 555 2671",
        "+44 (0)20 7946 0958",
        "(415) 555-2671",
        "415-555-2671",
        "020 7946 0958",
        "06-12345678",
    ):
        assert is_phone(ok), ok
    for bad in (
        "4155552671",  # bare digits: an id or an amount as much as a phone
        "1234.56",
        "1,234,567.00",
        "2021-01-05",
        "01-05-2021",
        "+1.5",
        "0.50",
        "+123",
    ):
        assert not is_phone(bad), bad


def test_column_names() -> None:
    kinds = {
        "name": "person_name",
        "first_name": "person_name",
        "LastName": "person_name",
        "customer_name": "person_name",
        "date_of_birth": "date_of_birth",
        "BirthDate": "date_of_birth",
        "dob": "date_of_birth",
        "home_address": "address",
        "postal_code": "address",
        "product_name": None,
        "birth_country": None,
        "ip_address": None,
        "email_address": None,
        "amount": None,
    }
    for name, kind in kinds.items():
        assert column_name_kind(name) == kind, name


def test_masking_hides_the_value() -> None:
    assert mask("john@example.com", "email") == "j***@example.com"
    assert mask("4242 4242 4242 4242", "payment_card") == "**** **** **** 4242"
    assert mask("123-45-6789", "us_ssn") == "***-**-6789"
    assert mask("GB82 WEST 1234 5698 7654 32", "iban") == "GB** **** **** **** **54 32"
    assert mask("192.168.0.1", "ip_address") == "192.*.*.*"
    assert mask("1985-04-12", "date_of_birth") == "****-**-**"
    assert mask("Alice", "person_name") == "A***"


# ------------------------------------------------------------------------- scan
def people() -> pd.DataFrame:
    n = 40
    return pd.DataFrame(
        {
            "customer_name": [f"Person {i}" for i in range(n)],
            "email": [f"user{i}@example.com" for i in range(n)],
            "card": ["4242 4242 4242 4242", "5555555555554444"] * (n // 2),
            "bad_card": ["4242 4242 4242 4241"] * n,  # Luhn fails everywhere
            "iban": ["NL91ABNA0417164300"] * n,
            "bad_iban": ["NL91ABNA0417164301"] * n,
            "ssn": ["123-45-6789"] * (n // 2) + ["666-12-3456"] * (n // 2),
            "ip": [f"10.0.0.{i}" for i in range(n)],
            "phone": ["+31 6 1234 5678"] * n,
            "amount": [i * 1.25 for i in range(n)],
            "note": ["ok"] * (n - 2) + ["mail me: x@example.com", "user9@example.com"],
        }
    )


def test_scan_finds_each_kind_and_skips_checksum_failures(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    people().to_csv(path, index=False)
    report = scan_pii(path)
    found = {(c.column, c.detector, c.by): c for c in report.found}
    assert set(found) == {
        ("customer_name", "person_name", "column_name"),
        ("email", "email", "value"),
        ("card", "payment_card", "value"),
        ("iban", "iban", "value"),
        ("ssn", "us_ssn", "value"),
        ("ip", "ip_address", "value"),
        ("phone", "phone", "value"),
    }
    ssn = found[("ssn", "us_ssn", "value")]
    assert (ssn.matches, ssn.checked) == (20, 40)
    card = found[("card", "payment_card", "value")]
    assert card.examples[0] == "**** **** **** 4242" and card.rows[:2] == [0, 1]
    assert found[("email", "email", "value")].examples[0] == "u***@example.com"
    assert report.exit_code == 1
    # 1 of 40 values is a bare email: below the default 10 % threshold
    assert not any(c.column == "note" for c in report.found)
    assert any(c.column == "note" for c in scan_pii(path, min_fraction=0.02).found)


def test_numbers_in_integer_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"pan": [4242424242424242, 5555555555554444] * 5, "n": range(10)})
    report = scan_pii(frame)
    assert [(c.column, c.detector) for c in report.found] == [("pan", "payment_card")]


def test_bundled_fraud_data_has_no_personal_data(tmp_path: Path) -> None:
    path = write_table(fraud(2000, random_state=0), tmp_path / "fraud.csv", label="is_fraud")
    report = scan_pii(path)
    assert report.found == [] and report.exit_code == 0
    findings = pii_findings(report, target="fraud")
    assert [f.rule_id for f in findings] == ["MLW-DAT-001", "MLW-DAT-002"]
    assert all(f.passed for f in findings)


def test_sampling_caps_the_rows_looked_at() -> None:
    frame = pd.DataFrame({"email": [f"u{i}@example.com" for i in range(500)]})
    report = scan_pii(frame, sample_rows=50)
    assert report.rows == 500 and report.sampled_rows == 50
    (col,) = report.found
    assert col.checked == 50 and all(0 <= r < 500 for r in col.rows)


def test_pii_findings_carry_taxonomy_and_masked_evidence() -> None:
    report = scan_pii(people())
    value, by_name = pii_findings(report, target="people")
    assert value.rule_id == "MLW-DAT-001" and not value.passed and value.value == 6
    assert set(value.atlas) == {"AML.T0024", "AML.T0057"} and "ML03" in value.owasp
    assert by_name.rule_id == "MLW-DAT-002" and not by_name.passed
    text = str(value.evidence)
    assert "4242 4242 4242 4242" not in text and "user1@example.com" not in text


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        scan_pii(tmp_path / "nope.csv")
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match="empty file"):
        scan_pii(empty)
    header = tmp_path / "h.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataFileError, match="no data rows"):
        scan_pii(header)
    with pytest.raises(InvalidParameterError, match="min_fraction"):
        scan_pii(people(), min_fraction=0)
    with pytest.raises(InvalidParameterError, match="sample_rows"):
        scan_pii(people(), sample_rows=0)


def test_bsn_column_in_csv_and_weak_checksums_need_half_the_values(tmp_path: Path) -> None:
    valid = [4242424242424242, 4111111111111111, 4000056655665556]
    invalid = [4242424242424243 + 100 * k for k in range(8)]  # Luhn fails
    assert not any(is_payment_card(str(v)) for v in invalid)
    path = tmp_path / "ids.csv"
    pd.DataFrame(
        {
            "bsn": ["111222333", "123456782", "012345672"] * 10,
            # 9-digit numbers, 1 in 3 passing the 11-test: above 10 %, below half
            "id": ["111222333", "123456789", "111222334"] * 10,
            # 16-digit integers, 3 in 11 passing Luhn: above 10 %, below half
            "ref": (valid + invalid) * 2 + valid[:2] + invalid[:6],
        }
    ).to_csv(path, index=False)
    report = scan_pii(path)
    assert [(c.column, c.detector) for c in report.found] == [("bsn", "nl_bsn")]
