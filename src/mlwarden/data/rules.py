"""The training-data rules: personal data in a data set, and data that no longer matches
its signed manifest.

Personal data in training rows can be memorised and leaked by the model (ATLAS
AML.T0024 exfiltration via the inference API, AML.T0057 data leakage; OWASP ML03 model
inversion, ML04 membership inference). Rows edited, added or dropped after signing
are the footprint of training-data poisoning (ATLAS AML.T0020, AML.T0010.002,
AML.T0059; OWASP ML02, ML06). Each rule has a page in ``docs/findings/<id>.md``.
"""

from __future__ import annotations

from mlwarden.findings.taxonomy import Rule, Severity, ThreatFamily, register_rule

__all__ = ["RULE_MANIFEST", "RULE_PII_COLUMN_NAME", "RULE_PII_VALUES"]

_FIX_PII = (
    "Drop the column if the model does not need it; otherwise pseudonymise it (keyed hash "
    "or tokenisation kept outside the training set), generalise it (year of birth instead "
    "of date, region instead of address) or train with differential privacy "
    "(mlwarden harden dp). Record the legal basis for any personal data you keep."
)

RULE_PII_VALUES = register_rule(
    Rule(
        id="MLW-DAT-001",
        title="Training data holds personal data (emails, phone, card, IBAN, national id, IP)",
        family=ThreatFamily.PRIVACY,
        severity=Severity.HIGH,
        atlas=("AML.T0024", "AML.T0057"),
        owasp=("ML03", "ML04"),
        description=(
            "Values in a column match a personal-data pattern, with a checksum where the "
            "format has one (Luhn for card numbers, mod-97 for IBANs, SSN area/group/serial "
            "rules, the Dutch BSN 11-test): a model trained on them can memorise and leak "
            "them, and the data set itself is personal data."
        ),
        remediation=_FIX_PII,
    )
)

RULE_PII_COLUMN_NAME = register_rule(
    Rule(
        id="MLW-DAT-002",
        title="Column names suggest personal data (names, date of birth, address)",
        family=ThreatFamily.PRIVACY,
        severity=Severity.MEDIUM,
        atlas=("AML.T0024", "AML.T0057"),
        owasp=("ML03", "ML04"),
        description=(
            "A column is named like a person's name, date of birth or postal address. "
            "These cannot be told from their values reliably, so the column name decides; "
            "check the column by hand."
        ),
        remediation=_FIX_PII,
    )
)

RULE_MANIFEST = register_rule(
    Rule(
        id="MLW-DAT-003",
        title="Data set does not match its signed manifest (changed since signing)",
        family=ThreatFamily.SUPPLY_CHAIN,
        severity=Severity.HIGH,
        atlas=("AML.T0020", "AML.T0010.002", "AML.T0059"),
        owasp=("ML02", "ML06"),
        description=(
            "The data set's schema or rows differ from the signed manifest (rows changed, "
            "inserted, removed or reordered; columns added, removed, renamed or retyped), "
            "or the manifest was not signed with the expected key."
        ),
        remediation=(
            "Do not train on the data until the differences are explained: restore the "
            "signed version from a trusted copy, or review the changed rows named in the "
            "evidence and sign the reviewed data again (mlwarden data sign). Keep the "
            "private key away from the storage the data lives in."
        ),
    )
)
