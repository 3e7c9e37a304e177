use super::*;

fn types() -> BTreeMap<String, String> {
    [("apns", "apns"), ("fcm", "fcm-profile")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

#[test]
fn names_decode_as_prosody_encodes_them() {
    assert_eq!(decode_name("abc123").as_deref(), Some("abc123"));
    assert_eq!(decode_name("a%2fb%2bc%23d").as_deref(), Some("a/b+c#d"));
    assert_eq!(decode_name("%2F%2B").as_deref(), Some("/+"), "either case");
    assert_eq!(decode_name("gr%c3%bcn").as_deref(), Some("grün"));
    assert_eq!(decode_name("a%2").as_deref(), None, "truncated escape");
    assert_eq!(decode_name("a%zz").as_deref(), None);
    assert_eq!(
        decode_name("a b").as_deref(),
        None,
        "Prosody never writes a space"
    );
    assert_eq!(decode_name("%ff").as_deref(), None, "not UTF-8");
    assert_eq!(decode_name("%e2%82").as_deref(), None, "cut in a character");
    assert_eq!(encode_name("push.example.org"), "push%2eexample%2eorg");
    for n in ["a/b+c#d", "grün", "x.y-z_w", ""] {
        assert_eq!(decode_name(&encode_name(n)).as_deref(), Some(n));
    }
}

#[test]
fn timestamps() {
    assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_timestamp("2019-03-01T12:34:56Z"),
        Some(1_551_443_696_000)
    );
    assert_eq!(
        parse_timestamp("2020-02-29T00:00:00Z"),
        Some(1_582_934_400_000)
    );
    assert_eq!(
        parse_timestamp("2019-03-01T12:34:56.5Z"),
        Some(1_551_443_696_500)
    );
    for bad in [
        "2019-02-29T00:00:00Z",
        "2019-13-01T00:00:00Z",
        "2019-01-01T24:00:00Z",
        "2019-01-01 00:00:00Z",
        "2019-01-01T00:00:00",
        "2019-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z",
        "+019-01-01T00:00:00Z",
        "2019-01-01T00:00:00.Z",
        "2019-01-0１T00:00:00Z",
        "",
    ] {
        assert_eq!(parse_timestamp(bad), None, "{bad}");
    }
}

const GOOD: &str = "return {\n\t[\"type\"] = \"fcm\";\n\t[\"node\"] = \"a/b\";\n\t[\"secret\"] = \"s3cr\\195\\169t\";\n\t[\"token\"] = \"tok\";\n\t[\"registered\"] = \"2019-03-01T12:34:56Z\";\n\t[\"renewed\"] = \"2020-02-29T00:00:00Z\";\n\t[\"last_successful_push\"] = \"2020-03-01T00:00:00Z\";\n};\n";

#[test]
fn a_module_record_maps_to_an_item() {
    let item = to_item("a/b", GOOD.as_bytes(), &types(), 7).unwrap();
    assert_eq!(item.push_type, "fcm-profile");
    assert_eq!(item.node, "a/b");
    assert_eq!(item.secret, "s3crét");
    assert_eq!(item.token, "tok");
    assert_eq!(item.registered_ms, 1_551_443_696_000);
    assert_eq!(item.renewed_ms, 1_582_934_400_000);
    assert_eq!(item.stats.last_successful_push_ms, Some(1_583_020_800_000));
    assert_eq!(item.stats.last_push_error_ms, None);
    // Without timestamps: registered now, renewed = registered.
    let bare = "return { type = 'apns', secret = 'x', token = 't' }";
    let item = to_item("n", bare.as_bytes(), &types(), 7).unwrap();
    assert_eq!((item.registered_ms, item.renewed_ms), (7, 7));
}

#[test]
fn broken_records_are_skipped_with_reasons() {
    let t = types();
    let skip = |file: &str| to_item("n", file.as_bytes(), &t, 0).unwrap_err();
    assert!(matches!(skip(&GOOD[..GOOD.len() / 2]), Skip::Parse(_)));
    assert_eq!(skip("return 5;"), Skip::NotATable);
    assert_eq!(
        skip("return { type = 'apns', token = 't' }"),
        Skip::Missing("secret")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 5, token = 't' }"),
        Skip::WrongType("secret", "number")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 'x', token = {} }"),
        Skip::WrongType("token", "table")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 'x', token = '\\255' }"),
        Skip::Invalid("token")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = '', token = 't' }"),
        Skip::Invalid("secret")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 'a\\nb', token = 't' }"),
        Skip::Invalid("secret")
    );
    assert_eq!(
        skip("return { type = 'webpush', secret = 'x', token = 't' }"),
        Skip::TypeNotConfigured("webpush".into())
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 'x', token = 't', registered = 'yesterday' }"),
        Skip::BadTimestamp("registered")
    );
    assert_eq!(
        skip("return { type = 'apns', secret = 'x', token = 't', last_push_error = true }"),
        Skip::WrongType("last_push_error", "boolean")
    );
    assert!(skip("return { [\"type\"] = \"apns\\q\" }")
        .to_string()
        .contains("escape"));
    assert!(to_item("", GOOD.as_bytes(), &t, 0).is_err(), "empty node");
}
