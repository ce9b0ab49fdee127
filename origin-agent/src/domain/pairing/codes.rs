//! Pairing codes: drawn from the OS CSPRNG, never chosen by a client, never trivial.
//!
//! * Owner-initiated codes (shown by `argus-relay pair`, typed or scanned on the phone): 6
//!   characters from an alphabet without look-alikes (no `0/O`, `1/I/L`, `5/S`, `2/Z`, `8/B`,
//!   `U/V`, `9/g`): 22 symbols, 22⁶ ≈ 1.1·10⁸ codes.
//! * Phone-initiated codes (shown on the phone by the existing ArgusAI app, typed by the owner
//!   into `argus-relay confirm`): 6 digits, because the app's schema says so; 10⁶ codes. The
//!   10-guesses-per-code cap in the store and the per-IP failure limit bound guessing.
//!
//! "Trivial" codes (one repeated symbol, a straight run up or down such as `123456`, a repeated
//! pair or triple such as `121212`/`ABCABC`) are redrawn: a person could guess them and a person
//! reading them over a shoulder remembers them.

use rand::rngs::OsRng;
use rand::Rng;

/// Symbols of owner codes.
pub const OWNER_ALPHABET: &[u8] = b"ACDEFGHJKMNPQRTWXY3467";
/// Length of both kinds of code.
pub const CODE_LEN: usize = 6;

/// A fresh owner-initiated code, e.g. `K7QRTA`.
pub fn new_owner_code() -> String {
    draw(OWNER_ALPHABET)
}

/// A fresh phone-initiated code, e.g. `402918`.
pub fn new_phone_code() -> String {
    draw(b"0123456789")
}

fn draw(alphabet: &[u8]) -> String {
    loop {
        let code: String = (0..CODE_LEN)
            .map(|_| char::from(alphabet[OsRng.gen_range(0..alphabet.len())]))
            .collect();
        if !is_trivial(&code) {
            return code;
        }
    }
}

/// One repeated symbol, a straight run, or a repeated pair/triple.
pub fn is_trivial(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() < 2 {
        return true;
    }
    let steps: Vec<i16> = b
        .windows(2)
        .map(|w| i16::from(w[1]) - i16::from(w[0]))
        .collect();
    let straight = steps.iter().all(|&s| s == steps[0] && s.abs() <= 1);
    let period = |p: usize| b.len().is_multiple_of(p) && b.chunks(p).all(|c| c == &b[..p]);
    straight || period(2) || period(3)
}

/// What a person typed, in the form codes are stored: spaces and dashes removed, upper case.
/// `None` for anything that cannot be a code (wrong length or symbols), so it never reaches the
/// store's lookup.
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|c| c.is_ascii_alphanumeric())).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_codes_are_recognised() {
        for c in [
            "AAAAAA", "123456", "654321", "121212", "ABCABC", "ACACAC", "000000",
        ] {
            assert!(is_trivial(c), "{c}");
        }
        for c in ["K7QRTA", "402918", "123457", "AACACD"] {
            assert!(!is_trivial(c), "{c}");
        }
    }

    #[test]
    fn drawn_codes_have_the_right_shape_and_are_never_trivial() {
        for _ in 0..2000 {
            let o = new_owner_code();
            assert_eq!(o.len(), CODE_LEN);
            assert!(o.bytes().all(|c| OWNER_ALPHABET.contains(&c)), "{o}");
            assert!(!is_trivial(&o));
            let p = new_phone_code();
            assert_eq!(p.len(), CODE_LEN);
            assert!(p.bytes().all(|c| c.is_ascii_digit()));
            assert!(!is_trivial(&p));
        }
    }

    #[test]
    fn the_owner_alphabet_has_no_look_alikes() {
        for c in b"0O1IL5S2Z8BUV9" {
            assert!(!OWNER_ALPHABET.contains(c), "{}", char::from(*c));
        }
    }

    #[test]
    fn typed_codes_are_normalized() {
        assert_eq!(normalize("k7q-rta").as_deref(), Some("K7QRTA"));
        assert_eq!(normalize(" 402 918 ").as_deref(), Some("402918"));
        assert_eq!(normalize("K7QRT"), None);
        assert_eq!(normalize("K7QRTA1"), None);
        assert_eq!(normalize("K7QRT!"), None);
        assert_eq!(normalize("K7QRTÄ"), None);
    }
}
