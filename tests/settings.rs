// figment::Jail closures return figment::Error, which is large by design.
#![allow(clippy::result_large_err)]

//! One test per precedence rule of the settings layers, plus the exit-78
//! contract. figment's `Jail` gives each test a clean environment and a
//! scratch working directory.

use aisha_actors::settings::{LogFormat, Mode};
use aishad::settings::{load, LoadOptions, Purpose, SettingsError};
use figment::Jail;

const BASE: &str = r#"
[default]
mode = "worker"
[default.log]
level = "warn"
[dev.log]
level = "debug"
[prod]
mode = "polling"
[prod.log]
format = "pretty"
"#;

fn opts(profile: &str) -> LoadOptions {
    LoadOptions { profile: Some(profile.into()), ..Default::default() }
}

fn inspect(profile: &str) -> Result<aisha_actors::settings::Settings, SettingsError> {
    load(&opts(profile), Purpose::Inspect)
}

#[test]
fn built_in_defaults_apply_without_a_file_or_env() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let s = inspect("dev").unwrap();
        assert_eq!(s.mode, Mode::All);
        assert_eq!(s.telegram.api_url, "https://api.telegram.org");
        assert_eq!(s.supervisor.max_restarts, 5);
        assert!(!s.instance_id.is_empty(), "instance id falls back to the host name");
        Ok(())
    });
}

#[test]
fn file_default_section_overrides_built_in_defaults() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", BASE)?;
        let s = inspect("test").unwrap();
        assert_eq!(s.mode, Mode::Worker);
        assert_eq!(s.log.level, "warn");
        Ok(())
    });
}

#[test]
fn selected_profile_overrides_the_default_section() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", BASE)?;
        let prod = inspect("prod").unwrap();
        assert_eq!(prod.mode, Mode::Polling);
        assert_eq!(prod.log.format, LogFormat::Pretty);
        assert_eq!(prod.log.level, "warn", "keys the profile leaves out come from [default]");
        assert_eq!(inspect("dev").unwrap().log.level, "debug");
        Ok(())
    });
}

#[test]
fn profile_comes_from_aisha_profile_when_no_flag() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", BASE)?;
        jail.set_env("AISHA_PROFILE", "prod");
        assert_eq!(load(&LoadOptions::default(), Purpose::Inspect).unwrap().mode, Mode::Polling);
        Ok(())
    });
}

#[test]
fn legacy_env_names_override_the_file() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", BASE)?;
        jail.set_env("BOT_MODE", "webhook");
        jail.set_env("LOG_LEVEL", "error");
        jail.set_env("MINIO_SECURE", "true");
        jail.set_env("MINIO_ENDPOINT", "minio:9000");
        jail.set_env("FAL_API_KEY", "fal-key-value");
        let s = inspect("prod").unwrap();
        assert_eq!(s.mode, Mode::Webhook);
        assert_eq!(s.log.level, "error");
        assert_eq!(s.s3.endpoint_url(), "https://minio:9000");
        assert_eq!(s.fal.key.expose(), "fal-key-value");
        Ok(())
    });
}

#[test]
fn primary_legacy_name_beats_its_alias() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("TELEGRAM_TOKEN", "111:alias");
        assert_eq!(inspect("dev").unwrap().telegram.token.expose(), "111:alias");
        jail.set_env("TELEGRAM_BOT_TOKEN", "222:primary");
        assert_eq!(inspect("dev").unwrap().telegram.token.expose(), "222:primary");
        Ok(())
    });
}

#[test]
fn aisha_prefixed_env_beats_legacy_names_and_the_file() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", BASE)?;
        jail.set_env("BOT_MODE", "webhook");
        jail.set_env("AISHA_MODE", "all");
        jail.set_env("AISHA_SUPERVISOR__SHUTDOWN_GRACE", "90s");
        jail.set_env("AISHA_HTTP__MAX_BODY", "2MiB");
        let s = inspect("prod").unwrap();
        assert_eq!(s.mode, Mode::All);
        assert_eq!(s.supervisor.shutdown_grace, std::time::Duration::from_secs(90));
        assert_eq!(s.http.max_body.0, 2 * 1024 * 1024);
        Ok(())
    });
}

#[test]
fn moved_keys_are_still_read_under_their_old_names() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", "[default.poller]\nmax_pending = 300\nbatch = 50\n")?;
        jail.set_env("AISHA_POLLER__MAX_CONCURRENT_CHATS", "7");
        let s = inspect("dev").unwrap();
        assert_eq!(s.intake.max_pending, 300, "poller.max_pending in the file is intake.max_pending");
        assert_eq!(s.intake.max_concurrent_chats, 7, "and AISHA_POLLER__… in the environment");
        assert_eq!(s.poller.batch, 50, "keys that did not move stay");
        Ok(())
    });
}

#[test]
fn a_new_name_beats_the_old_one_in_the_same_layer_and_layers_keep_their_order() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file(
            "config/aishad.toml",
            "[default.poller]\nmax_pending = 300\n[default.intake]\nmax_pending = 400\nmax_concurrent_chats = 9\n",
        )?;
        assert_eq!(inspect("dev").unwrap().intake.max_pending, 400, "the new name wins within the file");
        jail.set_env("AISHA_POLLER__MAX_CONCURRENT_CHATS", "3");
        assert_eq!(
            inspect("dev").unwrap().intake.max_concurrent_chats,
            3,
            "the environment's old name beats the file's new one"
        );
        Ok(())
    });
}

#[test]
fn private_link_ranges_may_be_allowed_only_in_the_test_profile() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("AISHA_LINKS__ALLOW_RANGES", "[\"10.0.0.0/8\"]");
        assert_eq!(inspect("test").unwrap().links.allow_ranges, ["10.0.0.0/8"]);
        let refused = inspect("prod").unwrap_err();
        assert_eq!(refused.key, "links.allow_ranges");
        assert!(refused.message.contains("only in the test profile"), "{}", refused.message);
        jail.set_env("AISHA_LINKS__ALLOW_RANGES", "[\"not-a-range\"]");
        assert_eq!(inspect("test").unwrap_err().key, "links.allow_ranges");
        Ok(())
    });
}

#[test]
fn a_free_readings_byte_cap_may_not_exceed_a_links() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("AISHA_LINKS__MAX_BYTES", "100MiB");
        jail.set_env("AISHA_LINKS__PROBE_MAX_BYTES", "200MiB");
        let refused = inspect("dev").unwrap_err();
        assert_eq!(refused.key, "links.probe_max_bytes");
        assert!(refused.message.contains("links.max_bytes"), "{}", refused.message);
        jail.set_env("AISHA_LINKS__PROBE_MAX_BYTES", "100MiB");
        assert_eq!(inspect("dev").unwrap().links.probe_max_bytes.0, 100 << 20);
        Ok(())
    });
}

#[test]
fn a_fal_model_is_one_with_a_model_file_of_its_product() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("AISHA_FAL__TRAINING_MODEL", "fal-ai/flux-lora-fast-training");
        assert_eq!(inspect("dev").unwrap().fal.training_model, "fal-ai/flux-lora-fast-training");
        jail.set_env("AISHA_FAL__TRAINING_MODEL", "fal-ai/flux-lora");
        let refused = inspect("dev").unwrap_err();
        assert_eq!(refused.key, "fal.training_model", "an image model is no trainer");
        jail.set_env("AISHA_FAL__TRAINING_MODEL", "fal-ai/flux-lora-portrait-trainer");
        jail.set_env("AISHA_FAL__TEXT_TO_IMAGE_MODEL", "fal-ai/some-new-model");
        let refused = inspect("dev").unwrap_err();
        assert_eq!(refused.key, "fal.text_to_image_model");
        assert!(refused.message.contains("no model file"), "{}", refused.message);
        Ok(())
    });
}

#[test]
fn mode_flag_beats_every_other_layer() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("AISHA_MODE", "worker");
        jail.set_env("BOT_MODE", "worker");
        let options = LoadOptions { mode: Some(Mode::Webhook), ..opts("dev") };
        assert_eq!(load(&options, Purpose::Inspect).unwrap().mode, Mode::Webhook);
        Ok(())
    });
}

#[test]
fn explicit_config_path_is_read_and_must_exist() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("elsewhere.toml", "[default]\nmode = \"webhook\"\n")?;
        let found = LoadOptions { config_path: Some("elsewhere.toml".into()), ..opts("dev") };
        assert_eq!(load(&found, Purpose::Inspect).unwrap().mode, Mode::Webhook);
        let missing = LoadOptions { config_path: Some("nope.toml".into()), ..opts("dev") };
        assert_eq!(load(&missing, Purpose::Inspect).unwrap_err().key, "config");
        Ok(())
    });
}

#[test]
fn malformed_values_name_their_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("DATABASE_URL", "not a url");
        assert_eq!(inspect("dev").unwrap_err().key, "database.url");
        jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db?sslmode=sometimes");
        assert_eq!(inspect("dev").unwrap_err().key, "database.url", "no such sslmode");
        jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem");
        assert_eq!(inspect("dev").unwrap_err().key, "database.url", "the CA file must be readable");
        jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db?sslmode=require");
        assert!(inspect("dev").is_ok(), "TLS to PostgreSQL is built in");
        jail.set_env("AISHA_REDIS__TLS_CA_FILE", "/no/such/ca.pem");
        assert_eq!(inspect("dev").unwrap_err().key, "redis.tls_ca_file");
        jail.set_env("AISHA_REDIS__TLS_CA_FILE", "");
        jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db");
        jail.set_env("AISHA_SUPERVISOR__PERIOD", "soon");
        assert_eq!(inspect("dev").unwrap_err().key, "supervisor.period");
        jail.set_env("AISHA_SUPERVISOR__PERIOD", "60s");
        jail.set_env("REDIS_URL", "http://cache");
        assert_eq!(inspect("dev").unwrap_err().key, "redis.url");
        jail.set_env("REDIS_URL", "redis://cache:6379");
        jail.set_env("AISHA_TELEGRAM__API_URL", "ftp://x");
        assert_eq!(inspect("dev").unwrap_err().key, "telegram.api_url");
        Ok(())
    });
}

#[test]
fn unknown_keys_are_refused_by_name() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("AISHA_DATABASE__POOLSIZE", "3");
        let err = inspect("dev").unwrap_err();
        assert_eq!(err.key, "database.poolsize");
        Ok(())
    });
}

/// Every service `run` connects to, besides Telegram.
fn set_services(jail: &mut Jail) {
    jail.set_env("DATABASE_URL", "postgres://u:p@localhost/db");
    jail.set_env("REDIS_URL", "redis://localhost");
    jail.set_env("MINIO_ENDPOINT", "localhost:9000");
    jail.set_env("MINIO_ACCESS_KEY", "ak");
    jail.set_env("MINIO_SECRET_KEY", "sk-secret");
}

#[test]
fn run_requires_what_it_connects_to() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let err = load(&opts("dev"), Purpose::Run).unwrap_err();
        assert_eq!(err.key, "database.url");
        assert!(err.to_string().contains("DATABASE_URL"), "{err}");
        set_services(jail);
        assert_eq!(load(&opts("dev"), Purpose::Run).unwrap_err().key, "telegram.token");
        jail.set_env("TELEGRAM_BOT_TOKEN", "1:x");
        load(&opts("dev"), Purpose::Run).unwrap();
        Ok(())
    });
}

#[test]
fn a_shipped_placeholder_left_in_place_stops_run_and_migrate_naming_its_key_not_its_value() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        set_services(jail);
        jail.set_env("TELEGRAM_BOT_TOKEN", "1:x");
        jail.set_env("FAL_WEBHOOK_URL", "https://REPLACE-ME.example/webhooks/fal");
        let e = load(&opts("prod"), Purpose::Run).unwrap_err();
        assert_eq!(e.key, "fal.webhook_url");
        assert!(e.to_string().contains("FAL_WEBHOOK_URL") && e.message.contains("Deploying"), "{e}");
        assert!(inspect("prod").is_ok(), "config and health still show what is set");

        jail.clear_env();
        jail.create_file("db", "postgres://aisha:replace-me@db:5432/aisha")?;
        jail.set_env("DATABASE_URL_FILE", "db");
        let e = load(&opts("prod"), Purpose::Database).unwrap_err();
        assert_eq!(e.key, "database.url", "a secret file's placeholder too");
        assert!(!e.to_string().contains("aisha:"), "no value in the error: {e}");
        Ok(())
    });
}

#[test]
fn a_database_of_several_hosts_is_accepted_its_password_masked_and_scrubbed() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let url = "postgres://aisha:ha-db-password@pg1:5432,pg2:5432,pg3:5432/aisha?target_session_attrs=read-write";
        jail.create_file("db", url)?;
        jail.set_env("DATABASE_URL_FILE", "db");
        let s = load(&opts("prod"), Purpose::Database).unwrap();
        assert_eq!(s.database.url.host(), "pg1:5432,pg2:5432,pg3:5432", "every host, for the logs");
        assert!(s.secret_values().contains(&"ha-db-password".to_owned()), "the redactor knows its password");
        let text = aishad::settings::render(&s);
        assert!(text.contains("postgres://aisha:***@pg1:5432,pg2:5432,pg3:5432/aisha"), "{text}");
        assert!(!text.contains("ha-db-password"), "{text}");
        Ok(())
    });
}

#[test]
fn rendered_config_masks_every_secret() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("TELEGRAM_BOT_TOKEN", "123456:SECRET-TOKEN-VALUE");
        jail.set_env("OPENAI_API_KEY", "sk-openai-secret");
        jail.set_env("FAL_KEY", "fal-secret-key");
        jail.set_env("MINIO_SECRET_KEY", "minio-secret");
        jail.set_env("DATABASE_URL", "postgres://aisha:db-password@db:5432/aisha");
        jail.set_env("REDIS_URL", "redis://:redis-password@cache:6379");
        let text = aishad::settings::render(&inspect("prod").unwrap());
        for secret in ["SECRET-TOKEN", "sk-openai", "fal-secret", "minio-secret", "db-password", "redis-password"] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(text.contains("token = \"***\""), "{text}");
        assert!(text.contains("postgres://aisha:***@db:5432/aisha"), "{text}");
        Ok(())
    });
}

#[test]
fn every_secret_can_be_read_from_a_file_named_by_a_file_twin() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_file("token", "123456:FROM-A-FILE\n")?;
        jail.create_file("db", "postgres://aisha:file-password@db:5432/aisha\r\n")?;
        jail.create_file("s3", "s3-secret")?;
        jail.set_env("TELEGRAM_BOT_TOKEN_FILE", "token");
        jail.set_env("AISHA_DATABASE__URL_FILE", "db");
        jail.set_env("MINIO_SECRET_KEY_FILE", "s3");
        jail.set_env("AISHA_REDIS__TLS_CA_FILE", "");
        let s = inspect("prod").unwrap();
        assert_eq!(s.telegram.token.expose(), "123456:FROM-A-FILE", "the trailing newline is not part of it");
        assert_eq!(s.database.url.expose(), "postgres://aisha:file-password@db:5432/aisha");
        assert_eq!(s.s3.secret_key.expose(), "s3-secret");
        assert_eq!(s.redis.tls_ca_file, "", "a key that merely ends in _file is still a key");
        Ok(())
    });
}

#[test]
fn a_secret_file_that_is_missing_empty_or_doubled_by_a_variable_is_refused_by_key() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("OPENAI_API_KEY_FILE", "/run/secrets/nowhere");
        let e = inspect("prod").unwrap_err();
        assert_eq!(e.key, "openai.api_key");
        assert!(e.message.contains("OPENAI_API_KEY_FILE: cannot read /run/secrets/nowhere"), "{e}");

        jail.create_file("empty", "\n")?;
        jail.set_env("OPENAI_API_KEY_FILE", "empty");
        assert!(inspect("prod").unwrap_err().message.contains("is empty"));

        jail.create_file("key", "sk-file")?;
        jail.set_env("OPENAI_API_KEY_FILE", "key");
        jail.set_env("AISHA_OPENAI__API_KEY", "sk-env");
        let e = inspect("prod").unwrap_err();
        assert!(e.message.contains("both AISHA_OPENAI__API_KEY and OPENAI_API_KEY_FILE are set"), "{e}");
        assert!(!e.to_string().contains("sk-"), "no secret in the error: {e}");
        Ok(())
    });
}

/// The defaults live in the code (`Default` impls); `config/aishad.toml`'s
/// `[default]` section repeats some of them for operators to read. Loading
/// the code's defaults with and without that section must give the same
/// settings, or the file says one thing and the daemon does another.
#[test]
fn the_files_default_section_agrees_with_the_codes_defaults() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_to_string(repo.join("config/aishad.toml")).unwrap();
    let file: toml::Table = file.parse().unwrap();
    let only_default: toml::Table = [("default".to_owned(), file["default"].clone())].into_iter().collect();
    let section = toml::to_string(&only_default).unwrap();
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.create_dir("config")?;
        jail.create_file("config/aishad.toml", &section)?;
        let from_file = aishad::settings::render(&load(&opts("none"), Purpose::Inspect).unwrap());
        std::fs::remove_file(jail.directory().join("config/aishad.toml")).unwrap();
        let from_code = aishad::settings::render(&load(&opts("none"), Purpose::Inspect).unwrap());
        let (code, file) = (flatten(&from_code), flatten(&from_file));
        let differ: Vec<String> = code
            .iter()
            .chain(&file)
            .filter(|(key, _)| key.as_str() != "instance_id")
            .filter(|(key, value)| code.get(*key) != Some(value) || file.get(*key) != Some(value))
            .map(|(key, _)| format!("{key}: code {:?}, file {:?}", code.get(key), file.get(key)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert!(differ.is_empty(), "code default vs config/aishad.toml [default]: {differ:#?}");
        Ok(())
    });
}

/// Every leaf of a rendered settings file, by its dotted key.
fn flatten(rendered: &str) -> std::collections::BTreeMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut std::collections::BTreeMap<String, String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match value {
                toml::Value::Table(inner) => walk(&key, inner, out),
                leaf => {
                    out.insert(key, leaf.to_string());
                }
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk("", &rendered.parse().unwrap(), &mut out);
    out
}

#[test]
fn translation_languages_must_be_ones_the_bot_can_name_each_once() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_eq!(inspect("dev").unwrap().translation.languages, ["en", "ru", "de", "fr", "es", "uk"]);
        jail.set_env("AISHA_TRANSLATION__LANGUAGES", "[\"en\", \"xx\"]");
        let refused = inspect("dev").unwrap_err();
        assert_eq!(refused.key, "translation.languages");
        assert!(refused.message.starts_with("xx: not one of ru, en, kk"), "{}", refused.message);
        jail.set_env("AISHA_TRANSLATION__LANGUAGES", "[\"de\", \"de\"]");
        assert!(inspect("dev").unwrap_err().message.contains("twice"));
        jail.set_env("AISHA_TRANSLATION__LANGUAGES", "[\"kk\", \"tr\"]");
        assert_eq!(inspect("dev").unwrap().translation.languages, ["kk", "tr"]);
        Ok(())
    });
}

#[test]
fn min_connections_are_none_until_asked_and_never_more_than_the_pool() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_eq!(inspect("dev").unwrap().database.min_connections, 0);
        jail.set_env("AISHA_DATABASE__MIN_CONNECTIONS", "17");
        assert_eq!(inspect("dev").unwrap_err().key, "database.min_connections", "the pool holds 16");
        jail.set_env("AISHA_DATABASE__MIN_CONNECTIONS", "16");
        assert_eq!(inspect("dev").unwrap().database.min_connections, 16);
        Ok(())
    });
}

#[test]
fn send_headroom_is_a_share_of_each_limit_from_none_to_half() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_eq!(inspect("dev").unwrap().telegram.send_headroom, 0.05);
        jail.set_env("AISHA_TELEGRAM__SEND_HEADROOM", "0.6");
        assert_eq!(inspect("dev").unwrap_err().key, "telegram.send_headroom");
        jail.set_env("AISHA_TELEGRAM__SEND_HEADROOM", "0");
        assert_eq!(inspect("dev").unwrap().telegram.send_headroom, 0.0);
        Ok(())
    });
}

#[test]
fn paid_broadcasts_are_off_until_asked_and_then_kept_within_telegrams_thousand_with_a_ceiling() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let paid = inspect("dev").unwrap().telegram.paid_broadcast;
        assert!(!paid.enabled, "off by default");
        assert_eq!(
            paid.after,
            std::time::Duration::from_millis(250),
            "a message waits a quarter second for a free slot"
        );
        jail.set_env("AISHA_TELEGRAM__PAID_BROADCAST__ENABLED", "true");
        jail.set_env("AISHA_TELEGRAM__PAID_BROADCAST__PER_SECOND", "980");
        let refused = inspect("dev").unwrap_err();
        assert_eq!(refused.key, "telegram.paid_broadcast.per_second", "980 paid + 30 free is over 1000");
        jail.set_env("AISHA_TELEGRAM__PAID_BROADCAST__PER_SECOND", "970");
        jail.set_env("AISHA_TELEGRAM__PAID_BROADCAST__DAILY_STARS", "0");
        assert_eq!(inspect("dev").unwrap_err().key, "telegram.paid_broadcast.daily_stars");
        jail.set_env("AISHA_TELEGRAM__PAID_BROADCAST__DAILY_STARS", "50");
        let paid = inspect("dev").unwrap().telegram.paid_broadcast;
        assert_eq!((paid.per_second, paid.daily_stars), (970, 50));
        Ok(())
    });
}
