//! The renewal hint of the widget-token answer: `renewAfter`, the seconds
//! from now after which the widget should ask for its next token.

use std::fmt;

/// When a widget should renew its token, as a fraction of the token's
/// remaining life: `renewAfter` is that fraction of `expiresIn`, rounded
/// down, and always below `expiresIn` (for a token that has any life left).
///
/// Relative, so that a widget whose clock is wrong by hours still renews in
/// time: it counts from when it received the answer, never from
/// `expiresAt`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalHint {
    fraction: f64,
}

/// A renewal fraction that is not above 0 and below 1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the renewal fraction {0} must be above 0 and below 1 (renewAfter must come before expiresIn)"
)]
pub struct RenewalHintError(pub f64);

impl RenewalHint {
    /// The default: renew after three quarters of the token's life.
    pub const DEFAULT_FRACTION: f64 = 0.75;

    /// A hint of `fraction` of the remaining life: above 0 and below 1.
    pub fn fraction(fraction: f64) -> Result<Self, RenewalHintError> {
        if fraction.is_finite() && fraction > 0.0 && fraction < 1.0 {
            Ok(Self { fraction })
        } else {
            Err(RenewalHintError(fraction))
        }
    }

    /// The fraction.
    pub fn as_fraction(self) -> f64 {
        self.fraction
    }

    /// `renewAfter` for a token with `expires_in` seconds left: below
    /// `expires_in` whenever that is above 0 (0 otherwise).
    pub fn renew_after(self, expires_in: u64) -> u64 {
        // Exact below 2^53 seconds; a fraction below 1 keeps it below
        // `expires_in`, and the cap keeps it so after rounding.
        let after = (expires_in as f64 * self.fraction).floor() as u64;
        after.min(expires_in.saturating_sub(1))
    }
}

impl Default for RenewalHint {
    fn default() -> Self {
        Self {
            fraction: Self::DEFAULT_FRACTION,
        }
    }
}

impl fmt::Display for RenewalHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fraction)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renew_after_is_below_expires_in() {
        let hint = RenewalHint::default();
        assert_eq!(hint.renew_after(120), 90);
        assert_eq!(hint.renew_after(3600), 2700);
        assert_eq!(hint.renew_after(1), 0);
        assert_eq!(hint.renew_after(0), 0);
        let late = RenewalHint::fraction(0.999_999).unwrap();
        for expires_in in [1, 2, 15, 59, 86_400, u64::MAX] {
            assert!(late.renew_after(expires_in) < expires_in, "{expires_in}");
        }
        assert_eq!(RenewalHint::fraction(0.5).unwrap().renew_after(15), 7);
    }

    #[test]
    fn fractions_outside_the_open_interval_are_refused() {
        for bad in [0.0, 1.0, 1.5, -0.1, f64::NAN, f64::INFINITY] {
            let error = RenewalHint::fraction(bad).unwrap_err();
            assert!(error.to_string().contains("below 1"), "{error}");
        }
        assert!(RenewalHint::fraction(0.01).is_ok());
    }
}
