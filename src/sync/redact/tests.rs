use super::*;

#[test]
fn masks_url_passwords() {
    let r = Redactor::default();
    assert_eq!(
        r.redact("conn_url=postgres://slinguser:hunter2secret@127.0.0.1:5432/db?sslmode=disable"),
        "conn_url=postgres://slinguser:***@127.0.0.1:5432/db?sslmode=disable"
    );
    assert_eq!(
        r.redact("mysql://root:p%40ss@h/db"),
        "mysql://root:***@h/db"
    );
    assert_eq!(r.redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    assert_eq!(
        r.redact("postgres://user@host/db"),
        "postgres://user@host/db"
    );
}

#[test]
fn masks_key_value_passwords() {
    let r = Redactor::default();
    assert_eq!(
        r.redact("host=db user=u password=s3cret dbname=x"),
        "host=db user=u password=*** dbname=x"
    );
    assert_eq!(
        r.redact("Password='a b'; Server=x"),
        "Password='***'; Server=x"
    );
    assert_eq!(
        r.redact(r#"{"user":"u","password":"s3cret","port":5432}"#),
        r#"{"user":"u","password":"***","port":5432}"#
    );
}

#[test]
fn url_passwords_with_raw_delimiters_are_masked_whole() {
    let r = Redactor::default();
    assert_eq!(
        r.redact("dial postgres://u:p@ss:w/rd@db.internal:5432/app?x=1 failed"),
        "dial postgres://u:***@db.internal:5432/app?x=1 failed"
    );
    assert_eq!(r.redact("mysql://root:a:b@h"), "mysql://root:***@h");
}

#[test]
fn values_of_every_resolvable_connection_are_masked_in_every_form() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join(".sling")).expect("mkdir");
    std::fs::write(
        home.path().join(".sling/env.yaml"),
        "connections:\n  WAREHOUSE:\n    type: postgres\n    password: envFileS3cret\n  LAKE: mysql://u:fileUrlPw9@h/db\n",
    )
    .expect("write");
    let r = Redactor::from_vars([
        ("HOME".to_string(), home.path().display().to_string()),
        (
            "MISSION_PG".to_string(),
            "postgresql://reader:p@ss:w/rd@127.0.0.1:5432/app".to_string(),
        ),
        (
            "AUDIT".to_string(),
            "postgres://auditor@h/db?sslmode=disable&password=q%20uery9".to_string(),
        ),
        (
            "SLING_ENV_YAML".to_string(),
            "connections:\n  INLINE:\n    url: postgres://u:inlinePw77@h/db\n".to_string(),
        ),
    ]);
    for (text, secret) in [
        ("bare p@ss:w/rd here", "p@ss:w/rd"),
        ("encoded p%40ss%3Aw%2Frd here", "p%40ss%3Aw%2Frd"),
        ("query q uery9 decoded", "q uery9"),
        ("query q%20uery9 raw", "q%20uery9"),
        ("file envFileS3cret", "envFileS3cret"),
        ("file url fileUrlPw9", "fileUrlPw9"),
        ("inline inlinePw77", "inlinePw77"),
    ] {
        let out = r.redact(text);
        assert!(
            !out.contains(secret) && out.contains(MASK),
            "{text} -> {out}"
        );
    }
    // Short values are not masked on their own (they would garble every line), only in their shapes.
    let r = Redactor::from_vars([("X".to_string(), "postgres://u:ab@h/db".to_string())]);
    assert_eq!(r.redact("tab label"), "tab label");
}

#[test]
fn masks_whole_connection_env_values() {
    let r = Redactor::from_vars([
        (
            "PG".to_string(),
            "postgresql://u:hunter2secret@h:5432/d".to_string(),
        ),
        ("HOME".to_string(), "/root".to_string()),
        ("OTEL".to_string(), "http://collector:4317".to_string()),
    ]);
    assert_eq!(
        r.redact("x postgresql://u:hunter2secret@h:5432/d y"),
        "x postgresql://u:***@h:5432/d y"
    );
    // A password echoed on its own is still caught.
    assert_eq!(
        r.redact("auth failed for hunter2secret"),
        "auth failed for ***"
    );
    assert_eq!(
        r.redact("/root http://collector:4317"),
        "/root http://collector:4317"
    );
}

#[test]
fn redact_owned_keeps_a_plain_line_without_copying_and_masks_the_rest() {
    let r = Redactor::from_vars([(
        "PG".to_string(),
        "postgresql://u:hunter2secret@h/d".to_string(),
    )]);
    let plain = String::from("inserted 7 rows into main.orders");
    let at = plain.as_ptr();
    let out = r.redact_owned(plain);
    assert_eq!(out.as_ptr(), at, "no copy of a clean line");
    assert_eq!(
        r.redact_owned("auth failed for hunter2secret".to_string()),
        "auth failed for ***"
    );
}

#[test]
fn connection_string_detection() {
    assert!(looks_like_connection_string("postgres://u:p@h/d"));
    assert!(looks_like_connection_string("sqlite:///x.db"));
    assert!(looks_like_connection_string("host=x password=y"));
    assert!(!looks_like_connection_string("http://otel:4317"));
    assert!(!looks_like_connection_string("/etc/sling"));
}

#[test]
fn the_key_value_pre_check_agrees_with_lowercasing_every_window() {
    let reference = |text: &str| {
        text.as_bytes().windows(3).any(|w| {
            let w = w.to_ascii_lowercase();
            w == b"pas" || w == b"pwd"
        })
    };
    // Every triple of printable ASCII, plus bytes one bit (0x20) away from the letters compared.
    let mut alphabet: Vec<u8> = (0x20u8..0x7f).collect();
    alphabet.extend([0x10, 0x01, 0x04, 0x13, 0x17]);
    for &a in &alphabet {
        for &b in &alphabet {
            for &c in &alphabet {
                let text = String::from_utf8(vec![b'x', a, b, c]).expect("ASCII");
                assert_eq!(
                    super::might_hold_kv_password(&text),
                    reference(&text),
                    "{text:?}"
                );
            }
        }
    }
    assert!(super::might_hold_kv_password("…PaSsWoRd=…"));
    assert!(!super::might_hold_kv_password("p"));
}

#[test]
fn the_url_pre_check_finds_a_scheme_separator_anywhere() {
    for (text, found) in [
        ("postgres://u:p@h/db", true),
        ("a: b, c://", true),
        ("ends with :/", false),
        ("ends with :", false),
        ("no colon", false),
        ("::/ :/ /:/", false),
        ("x:://y", true),
    ] {
        assert_eq!(super::has_scheme_separator(text), found, "{text}");
        assert_eq!(text.contains("://"), found, "{text}");
    }
}
