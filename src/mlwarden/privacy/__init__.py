"""Privacy: membership inference, attribute inference, model inversion, and differential
privacy through Opacus (see docs/privacy.md)."""
