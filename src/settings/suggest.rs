//! "Did you mean": the known key nearest a misspelt one, so that `provder`
//! is reported as an unknown key close to `provider`, not as a missing
//! `provider`.

/// Keys longer than this get no suggestion (the distance is quadratic).
const MAX_KEY: usize = 64;

/// Edit distance (insertions, deletions, substitutions) of two short keys.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known key nearest `unknown`, if near enough to be a typo: at most
/// two edits, and fewer than half its length.
pub fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if unknown.len() > MAX_KEY {
        return None;
    }
    known
        .into_iter()
        .map(|k| (distance(unknown, k), k))
        .filter(|(d, k)| *d <= 2 && *d * 2 < k.chars().count().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Serde's "unknown field `x`, expected one of `a`, `b`" with the
/// nearest expected key named, when there is one.
pub fn with_suggestion(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let Some((unknown, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let known = expected.split('`').skip(1).step_by(2);
    match nearest(unknown, known) {
        Some(k) => format!("{message} (did you mean `{k}`?)"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_keys_get_the_nearest_known_one() {
        assert_eq!(nearest("provder", ["provider", "file"]), Some("provider"));
        assert_eq!(nearest("topc", ["topic", "team_id"]), Some("topic"));
        assert_eq!(nearest("colour", ["data_dir", "debugging"]), None);
        assert_eq!(nearest("ab", ["xy"]), None, "too short to guess");
        assert_eq!(nearest(&"x".repeat(100), ["x"]), None);
        assert_eq!(
            with_suggestion("unknown field `lisen`, expected one of `listen`, `threads`"),
            "unknown field `lisen`, expected one of `listen`, `threads` (did you mean `listen`?)"
        );
        assert_eq!(
            with_suggestion("unknown field `colour`, expected `listen` or `tls`"),
            "unknown field `colour`, expected `listen` or `tls`"
        );
        assert_eq!(with_suggestion("invalid type"), "invalid type");
    }
}
