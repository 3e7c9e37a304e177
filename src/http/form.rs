//! `application/x-www-form-urlencoded` decoding.

/// Decodes `a=1&b=x%20y` into pairs; malformed escapes are kept literally.
pub fn parse(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// The first value of `key`, trimmed.
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim())
}

/// Percent-decodes `s`; `+` means a space only in form bodies, not paths.
pub fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let p = parse("type=apns&node=E0FF%2D1&token=a+b&bad=%zz&end=%4");
        assert_eq!(get(&p, "type"), Some("apns"));
        assert_eq!(get(&p, "node"), Some("E0FF-1"));
        assert_eq!(get(&p, "token"), Some("a b"));
        assert_eq!(get(&p, "bad"), Some("%zz"));
        assert_eq!(get(&p, "end"), Some("%4"));
        assert_eq!(get(&p, "missing"), None);
        assert_eq!(decode("a+b%2Fc", false), "a+b/c");
    }
}
