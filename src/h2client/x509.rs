//! Just enough DER to read a certificate's expiry date (`notAfter`), so the
//! APNS certificate's expiry can be logged and shown without an X.509 crate.

use std::time::SystemTime;

/// The `notAfter` date of a DER certificate; `None` when malformed.
pub(crate) fn not_after(cert_der: &[u8]) -> Option<SystemTime> {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { ... } ... }
    let (tag, cert, _) = tlv(cert_der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    // version [0] EXPLICIT (optional), serialNumber, signature, issuer.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    for expected in [0x02, 0x30, 0x30] {
        let (tag, _, rest) = tlv(tbs)?;
        if tag != expected {
            return None;
        }
        tbs = rest;
    }
    // validity SEQUENCE { notBefore Time, notAfter Time }
    let (tag, validity, _) = tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = tlv(validity)?;
    let (tag, time, _) = tlv(rest)?;
    der_time(tag, std::str::from_utf8(time).ok()?)
}

/// Splits one DER element into (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (bytes, rest) = input.split_at(n);
        input = rest;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if input.len() < len {
        return None;
    }
    let (contents, rest) = input.split_at(len);
    Some((tag, contents, rest))
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn der_time(tag: u8, s: &str) -> Option<SystemTime> {
    let full = match tag {
        0x17 if s.len() == 13 => {
            let yy: u32 = s.get(..2)?.parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{s}")
        }
        0x18 if s.len() == 15 => s.to_owned(),
        _ => return None,
    };
    if !full.is_ascii() || !full.ends_with('Z') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    crate::clock::parse_rfc3339(&rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339;

    #[test]
    fn reads_not_after_of_a_generated_certificate() {
        let mut params = rcgen::CertificateParams::new(vec!["apns.test".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 5, 6);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let t = not_after(cert.der()).unwrap();
        assert_eq!(rfc3339(t), "2031-05-06T00:00:00Z");
    }

    #[test]
    fn both_time_forms_and_garbage() {
        assert_eq!(
            der_time(0x17, "491231235959Z").map(rfc3339).as_deref(),
            Some("2049-12-31T23:59:59Z")
        );
        assert_eq!(
            der_time(0x17, "991231235959Z").map(rfc3339).as_deref(),
            Some("1999-12-31T23:59:59Z")
        );
        assert_eq!(
            der_time(0x18, "20550101000000Z").map(rfc3339).as_deref(),
            Some("2055-01-01T00:00:00Z")
        );
        assert!(der_time(0x18, "2055010100000Z").is_none());
        assert!(not_after(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_none());
        assert!(not_after(&[]).is_none());
    }
}
