use super::*;

fn s(v: &str) -> Value {
    Value::Str(v.as_bytes().to_vec())
}

#[test]
fn prosody_file_storage_format() {
    let file = b"return {\n\t[\"type\"] = \"apns\";\n\t[\"node\"] = \"a/b+c#d\";\n\t[\"n\"] = 3;\n\t[\"ok\"] = true;\n\t[\"t\"] = {\n\t\t[\"x\"] = -1.5e2;\n\t};\n};\n";
    let v = parse_file(file).unwrap();
    assert_eq!(v.get("type"), Some(&s("apns")));
    assert_eq!(v.get("node"), Some(&s("a/b+c#d")));
    assert_eq!(v.get("n"), Some(&Value::Num(3.0)));
    assert_eq!(v.get("ok"), Some(&Value::Bool(true)));
    assert_eq!(
        v.get("t").and_then(|t| t.get("x")),
        Some(&Value::Num(-150.0))
    );
    assert_eq!(v.get("missing"), None);
    let twice = parse_file(b"return { a = 1, a = 2 }").unwrap();
    assert_eq!(
        twice.get("a"),
        Some(&Value::Num(2.0)),
        "the last wins, as in Lua"
    );
}

#[test]
fn other_spellings_of_the_subset() {
    // Unquoted keys, commas, single quotes, positional entries, comments,
    // long strings, hex numbers, no final semicolon.
    let v = parse_file(
        b"-- written by hand\nreturn { type = 'fcm', [ [==[k]==] ] = [[v]]; \"pos\", 0x1F, nil, false } --[[ end ]]",
    )
    .unwrap();
    assert_eq!(v.get("type"), Some(&s("fcm")));
    assert_eq!(v.get("k"), Some(&s("v")));
    let Value::Table(e) = &v else { panic!("{v:?}") };
    assert_eq!(e[2], (Value::Num(1.0), s("pos")));
    assert_eq!(e[3], (Value::Num(2.0), Value::Num(31.0)));
    assert_eq!(e[4].1, Value::Nil);
    assert_eq!(e[5].1, Value::Bool(false));
}

#[test]
fn string_escapes() {
    let v = parse_file(
        br#"return { ["a"] = "gr\195\188n \"q\" \\ \n\t\065\x41\u{FC}\z
              end\0"; ["b"] = "line\
two" }"#,
    )
    .unwrap();
    assert_eq!(
        v.get("a"),
        Some(&Value::Str(
            b"gr\xc3\xbcn \"q\" \\ \n\tAA\xc3\xbcend\0".to_vec()
        ))
    );
    assert_eq!(v.get("b"), Some(&s("line\ntwo")));
    assert_eq!(
        String::from_utf8(match v.get("a") {
            Some(Value::Str(b)) => b[..4].to_vec(),
            _ => vec![],
        })
        .unwrap(),
        "grü"
    );
}

fn kind(input: &[u8]) -> ErrorKind {
    match parse_file(input) {
        Ok(v) => panic!("{:?} parsed as {v:?}", String::from_utf8_lossy(input)),
        Err(e) => e.kind,
    }
}

#[test]
fn bad_escapes_are_errors() {
    for bad in [
        &br#"return { ["a"] = "\256" }"#[..],
        br#"return { ["a"] = "\999" }"#,
        br#"return { ["a"] = "\q" }"#,
        br#"return { ["a"] = "\xZZ" }"#,
        br#"return { ["a"] = "\x4" }"#,
        br#"return { ["a"] = "\u{110000}" }"#,
        br#"return { ["a"] = "\u{D800}" }"#,
        br#"return { ["a"] = "\u{}" }"#,
        br#"return { ["a"] = "\u41" }"#,
        br#"return { ["a"] = "\u{FFFFFFFFFFFF}" }"#,
    ] {
        assert_eq!(
            kind(bad),
            ErrorKind::BadEscape,
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn truncated_and_malformed_files_are_errors() {
    let full = b"return {\n\t[\"type\"] = \"apns\";\n\t[\"secret\"] = \"x\\195\\188\";\n};\n";
    // Every prefix that cuts into the table fails, none panics.
    for n in 0..full.len() - 3 {
        assert!(parse_file(&full[..n]).is_err(), "prefix {n} parsed");
    }
    assert!(parse_file(full).is_ok());
    assert_eq!(kind(b"{ }"), ErrorKind::NoReturn);
    assert_eq!(kind(b""), ErrorKind::NoReturn);
    assert_eq!(kind(b"returnx {}"), ErrorKind::NoReturn);
    assert_eq!(kind(b"return {} {}"), ErrorKind::TrailingData);
    assert_eq!(kind(b"return {};;"), ErrorKind::TrailingData);
    assert_eq!(
        kind(b"return { a = os.execute('x') }"),
        ErrorKind::Unexpected("'o'".into())
    );
    assert!(matches!(
        kind(b"return { a = b }"),
        ErrorKind::Unexpected(_)
    ));
    assert!(matches!(
        kind(b"return { [\"a\"] 1 }"),
        ErrorKind::Unexpected(_)
    ));
    assert!(matches!(kind(b"return { 1 2 }"), ErrorKind::Unexpected(_)));
    assert_eq!(kind(b"return { a = \"x\ny\" }"), ErrorKind::NewlineInString);
    assert_eq!(kind(b"return { a = 1e999 }"), ErrorKind::BadNumber);
    assert_eq!(kind(b"return { a = 1.2.3 }"), ErrorKind::BadNumber);
    assert_eq!(kind(b"return { a = 12ab }"), ErrorKind::BadNumber);
    assert_eq!(kind(b"return { a = - }"), ErrorKind::BadNumber);
    assert_eq!(kind(b"return { a = [[never closed }"), ErrorKind::Truncated);
    assert!(matches!(
        kind(b"return { a = \xff }"),
        ErrorKind::Unexpected(_)
    ));
}

#[test]
fn deep_nesting_is_refused_without_recursing_further() {
    let ok = format!("return {}{}", "{".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
    assert!(parse_file(ok.as_bytes()).is_ok());
    let deep = format!(
        "return {}{}",
        "{".repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(kind(deep.as_bytes()), ErrorKind::TooDeep);
    // A million open braces: refused at depth 17, no stack overflow.
    let huge = format!("return {}", "{[1]=".repeat(1_000_000));
    assert_eq!(kind(huge.as_bytes()), ErrorKind::TooDeep);
}

#[test]
fn sizes_are_bounded() {
    let many = format!("return {{{}}}", "1,".repeat(MAX_ENTRIES + 1));
    assert_eq!(kind(many.as_bytes()), ErrorKind::TooManyEntries);
    // A 4 MiB string parses in linear time; a 4 MiB string left open is
    // an error, not a hang.
    let big = "\\065".repeat(1 << 20);
    let v = parse_file(format!("return {{ a = \"{big}\" }}").as_bytes()).unwrap();
    assert!(matches!(v.get("a"), Some(Value::Str(b)) if b.len() == 1 << 20));
    let open = format!("return {{ a = \"{}", "x".repeat(4 << 20));
    assert_eq!(kind(open.as_bytes()), ErrorKind::Truncated);
    let long_number = format!("return {{ a = {} }}", "9".repeat(100));
    assert_eq!(kind(long_number.as_bytes()), ErrorKind::BadNumber);
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz over mutations of a valid file.
    let base = b"return {\n\t[\"node\"] = \"n\\195\\188\";\n\t[\"t\"] = { 1, 2.5, -3, true, nil, [[x]] };\n};\n".to_vec();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let mut m = base.clone();
        for _ in 0..1 + (seed % 4) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % m.len();
            match seed % 3 {
                0 => m[at] = (seed >> 24) as u8,
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, b"{[\"\\=-;,}"[(seed >> 32) as usize % 9]),
            }
        }
        let _ = parse_file(&m);
    }
}
