use super::*;

const MINIMAL: &str = "
public_url: https://trellis.example.org
oidc:
  issuer: https://id.example.org
  client_id: trellis
  client_secret: s3cret
";

#[test]
fn minimal_config_gets_safe_defaults() {
    let config = Config::from_yaml(MINIMAL).unwrap();
    assert!(config.session.secure_cookie);
    assert_eq!(config.audiences(), vec!["trellis".to_string()]);
    assert_eq!(
        config.algorithms().unwrap(),
        vec![Algorithm::RS256, Algorithm::ES256]
    );
    assert_eq!(config.oidc.subject_claim, "preferred_username");
    // Unset: chosen from the provider's discovery document at start.
    assert_eq!(config.oidc.scopes, None);
    let set = Config::from_yaml(&format!("{MINIMAL}  scopes: [openid, groups]\n")).unwrap();
    assert_eq!(
        set.oidc.scopes,
        Some(vec!["openid".to_string(), "groups".to_string()])
    );
    assert_eq!(
        config.database_url(),
        "sqlite:///var/lib/trellis/trellis.db?mode=rwc"
    );
    assert_eq!(config.session.ttl, Duration::from_secs(8 * 3600));
    assert_eq!(config.gateway.activity_interval, Duration::from_secs(60));
    assert_eq!(config.gateway.connect_timeout, Duration::from_secs(5));
}

fn error_of(yaml: &str) -> String {
    Config::from_yaml(yaml).unwrap_err().to_string()
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (
            MINIMAL.replace("https://id.example.org", "not a url"),
            "oidc.issuer",
        ),
        (format!("{MINIMAL}listen: nowhere\n"), "listen"),
        (
            format!("{MINIMAL}listen: 0.0.0.0:8443\nops_listen: 127.0.0.1:8443\n"),
            "ops_listen",
        ),
        (format!("{MINIMAL}colour: blue\n"), "colour"),
        (
            MINIMAL.replace("  client_secret: s3cret\n", ""),
            "oidc.client_secret",
        ),
        (
            format!("{MINIMAL}  algorithms: [none]\n"),
            "oidc.algorithms",
        ),
        (
            format!("{MINIMAL}  algorithms: [HS256]\n"),
            "oidc.algorithms",
        ),
        (
            format!("{MINIMAL}  scopes: [profile, groups]\n"),
            "oidc.scopes",
        ),
        (format!("{MINIMAL}  leeway: 1h\n"), "oidc.leeway"),
        (format!("{MINIMAL}  leeway: soon\n"), "oidc.leeway"),
        (
            format!("{MINIMAL}database:\n  url: mysql://x\n"),
            "database.url",
        ),
        (format!("{MINIMAL}session:\n  ttl: 5s\n"), "session.ttl"),
        (
            format!("{MINIMAL}gateway:\n  activity_interval: 0s\n"),
            "gateway.activity_interval",
        ),
        (
            format!("{MINIMAL}gateway:\n  connect_timeout: 2m\n"),
            "gateway.connect_timeout",
        ),
        (format!("{MINIMAL}gateway:\n  activity: 1m\n"), "gateway"),
        (
            format!("{MINIMAL}gateway:\n  public_url: http://127.0.0.1:9999\n"),
            "gateway.public_url",
        ),
        (
            format!("{MINIMAL}gateway:\n  public_url: https://workspaces.example/w/\n"),
            "gateway.public_url",
        ),
        (
            MINIMAL.replace("https://trellis", "http://trellis"),
            "session.secure_cookie",
        ),
        (
            MINIMAL.replace("public_url: https://trellis.example.org\n", ""),
            "public_url",
        ),
    ];
    for (yaml, field) in cases {
        let error = error_of(&yaml);
        assert!(error.contains(field), "error for `{field}` was: {error}");
    }
}

#[test]
fn smtp_settings_are_checked() {
    assert!(
        Config::from_yaml(MINIMAL)
            .unwrap()
            .notifications
            .smtp
            .is_none(),
        "no SMTP unless configured"
    );
    let smtp = format!(
        "{MINIMAL}notifications:\n  smtp:\n    host: mail.example.org\n    from: Trellis <trellis@example.org>\n"
    );
    let config = Config::from_yaml(&smtp).unwrap();
    let parsed = config.notifications.smtp.as_ref().unwrap();
    assert_eq!((parsed.tls, parsed.port()), (SmtpTls::StartTls, 587));
    assert_eq!(parsed.timeout, Duration::from_secs(30));
    let cases = [
        (
            smtp.replace("trellis@example.org", "not an address"),
            "notifications.smtp.from",
        ),
        (format!("{smtp}    tls: sometimes\n"), "tls"),
        (
            format!("{smtp}    username: trellis\n"),
            "notifications.smtp.password_file",
        ),
        (
            format!("{smtp}    password_file: /p\n"),
            "notifications.smtp.username",
        ),
        (
            format!("{smtp}    tls: none\n    username: u\n    password_file: /p\n"),
            "notifications.smtp.tls",
        ),
        (
            format!("{smtp}    timeout: 0s\n"),
            "notifications.smtp.timeout",
        ),
        (format!("{smtp}    port: 0\n"), "notifications.smtp.port"),
        (
            smtp.replace("mail.example.org", "''"),
            "notifications.smtp.host",
        ),
    ];
    for (yaml, field) in cases {
        let error = error_of(&yaml);
        assert!(error.contains(field), "error for `{field}` was: {error}");
    }
    let tls = format!("{smtp}    tls: tls\n");
    assert_eq!(
        Config::from_yaml(&tls)
            .unwrap()
            .notifications
            .smtp
            .unwrap()
            .port(),
        465
    );
}

#[test]
fn s3_settings_are_checked() {
    let dir = Config::from_yaml(MINIMAL).unwrap();
    assert!(
        dir.airlock.s3.is_none(),
        "a local directory unless configured"
    );
    let s3 = format!(
        "{MINIMAL}airlock:\n  s3:\n    bucket: trellis-airlock\n    access_key_id: trellis\n    secret_access_key_file: /run/secrets/s3\n"
    );
    let parsed = Config::from_yaml(&s3).unwrap().airlock.s3.unwrap();
    assert_eq!(parsed.region, "us-east-1");
    assert!(parsed.endpoint.is_none() && !parsed.virtual_hosted_style && !parsed.allow_http);
    let endpoint = |url: &str| format!("{s3}    endpoint: {url}\n");
    let ok = [
        endpoint("https://minio.storage.svc:9000"),
        format!(
            "{}    allow_http: true\n",
            endpoint("http://127.0.0.1:9000")
        ),
        format!("{s3}    path_prefix: tre/prod\n"),
    ];
    for yaml in ok {
        assert!(
            Config::from_yaml(&yaml).is_ok(),
            "{yaml}: {:?}",
            Config::from_yaml(&yaml).err()
        );
    }
    let cases = [
        (
            s3.replace("trellis-airlock", "Trellis_Airlock"),
            "airlock.s3.bucket",
        ),
        (s3.replace("trellis-airlock", "ab"), "airlock.s3.bucket"),
        (
            s3.replace("trellis-airlock", "-airlock"),
            "airlock.s3.bucket",
        ),
        (endpoint("http://127.0.0.1:9000"), "airlock.s3.endpoint"),
        (endpoint("ftp://store.example.org"), "airlock.s3.endpoint"),
        (
            endpoint("https://key:secret@store.example.org"),
            "airlock.s3.endpoint",
        ),
        (
            endpoint("https://store.example.org/?x=1"),
            "airlock.s3.endpoint",
        ),
        (endpoint("not a url"), "airlock.s3.endpoint"),
        (format!("{s3}    region: ''\n"), "airlock.s3.region"),
        (
            s3.replace("access_key_id: trellis", "access_key_id: ' '"),
            "airlock.s3.access_key_id",
        ),
        (
            s3.replace("    secret_access_key_file: /run/secrets/s3\n", ""),
            "secret_access_key_file",
        ),
        // Secrets come from a file only.
        (
            format!("{s3}    secret_access_key: inline\n"),
            "secret_access_key",
        ),
        (
            format!("{s3}    path_prefix: /tre\n"),
            "airlock.s3.path_prefix",
        ),
        (
            format!("{s3}    path_prefix: tre/\n"),
            "airlock.s3.path_prefix",
        ),
        (
            format!("{s3}    path_prefix: a/../b\n"),
            "airlock.s3.path_prefix",
        ),
        (
            format!("{s3}    path_prefix: a//b\n"),
            "airlock.s3.path_prefix",
        ),
        (
            format!("{s3}  storage_dir: /srv/airlock\n"),
            "airlock.storage_dir",
        ),
        (
            format!("{s3}  max_file_bytes: 6000000000000\n"),
            "airlock.max_file_bytes",
        ),
    ];
    for (yaml, field) in cases {
        let error = error_of(&yaml);
        assert!(error.contains(field), "error for `{field}` was: {error}");
    }
}

#[test]
fn the_s3_secret_is_read_from_its_file() {
    let dir = std::env::temp_dir().join(format!("trellis-s3-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    let yaml = format!(
        "{MINIMAL}airlock:\n  s3:\n    bucket: b-1\n    access_key_id: k\n    secret_access_key_file: {}\n",
        file.display()
    );
    let s3 = Config::from_yaml(&yaml).unwrap().airlock.s3.unwrap();
    let missing = s3.secret_access_key().unwrap_err().to_string();
    assert!(
        missing.contains("airlock.s3.secret_access_key_file"),
        "{missing}"
    );
    std::fs::write(&file, "\n").unwrap();
    assert!(
        s3.secret_access_key()
            .unwrap_err()
            .to_string()
            .contains("is empty")
    );
    std::fs::write(&file, "s3cret key\n").unwrap();
    assert_eq!(s3.secret_access_key().unwrap(), "s3cret key");
}

#[test]
fn plain_http_needs_insecure_cookies_said_out_loud() {
    let yaml =
        MINIMAL.replace("https://trellis", "http://trellis") + "session:\n  secure_cookie: false\n";
    assert!(!Config::from_yaml(&yaml).unwrap().session.secure_cookie);
}

#[test]
fn the_cli_client_is_an_accepted_audience() {
    let yaml = MINIMAL.replace(
        "client_id: trellis",
        "client_id: trellis\n  cli_client_id: trellis-cli",
    );
    let config = Config::from_yaml(&yaml).unwrap();
    assert_eq!(
        config.audiences(),
        vec!["trellis".to_string(), "trellis-cli".to_string()]
    );
    let explicit = yaml.replace(
        "client_secret: s3cret",
        "client_secret: s3cret\n  audiences: [only]",
    );
    assert_eq!(
        Config::from_yaml(&explicit).unwrap().audiences(),
        vec!["only".to_string()]
    );
    let empty = MINIMAL.replace(
        "client_id: trellis",
        "client_id: trellis\n  cli_client_id: ' '",
    );
    assert!(
        error_of(&empty).contains("oidc.cli_client_id"),
        "{}",
        error_of(&empty)
    );
}
