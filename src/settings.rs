//! Loading the settings: built-in defaults → `config/aishad.toml` (`[default]`
//! merged with the selected profile) → legacy environment names →
//! `AISHA_SECTION__KEY`. Later layers win. Any problem is a [`SettingsError`]
//! naming the key, which `main` turns into exit code 78.

use std::path::PathBuf;

use aisha_actors::settings::{Mode, Settings};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Profile};

pub const DEFAULT_CONFIG_PATH: &str = "config/aishad.toml";

/// Variable names of the existing deployment, lowest priority first where two
/// name the same key (`TELEGRAM_BOT_TOKEN` beats `TELEGRAM_TOKEN`).
pub const LEGACY_ENV: &[(&str, &str)] = &[
    ("TELEGRAM_TOKEN", "telegram.token"),
    ("TELEGRAM_BOT_TOKEN", "telegram.token"),
    ("TELEGRAM_API_URL", "telegram.api_url"),
    ("TELEGRAM_WEBHOOK_SECRET", "telegram.webhook_secret"),
    ("TELEGRAM_WEBHOOK_URL", "telegram.webhook_url"),
    ("OPENAI_API_KEY", "openai.api_key"),
    ("OPENAI_BASE_URL", "openai.base_url"),
    ("FAL_API_KEY", "fal.key"),
    ("FAL_KEY", "fal.key"),
    ("FAL_QUEUE_URL", "fal.queue_url"),
    ("FAL_JWKS_URL", "fal.jwks_url"),
    ("FAL_WEBHOOK_URL", "fal.webhook_url"),
    ("DATABASE_URL", "database.url"),
    ("REDIS_URL", "redis.url"),
    ("MINIO_ENDPOINT", "s3.endpoint"),
    ("MINIO_ACCESS_KEY", "s3.access_key"),
    ("MINIO_SECRET_KEY", "s3.secret_key"),
    ("MINIO_SECURE", "s3.secure"),
    ("MINIO_BUCKET_NAME", "s3.bucket"),
    ("BOT_MODE", "mode"),
    ("INSTANCE_ID", "instance_id"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("WEBHOOK_BIND", "http.webhook_bind"),
    ("TELEMETRY_BIND", "http.telemetry_bind"),
];

/// Keys that moved, old name → new: a layer (the file, the environment) that
/// sets the old one sets the new one, unless it sets that too.
pub const MOVED_KEYS: &[(&str, &str)] =
    &[("poller.max_concurrent_chats", "intake.max_concurrent_chats"), ("poller.max_pending", "intake.max_pending")];

/// A provider whose keys named in [`MOVED_KEYS`] are read under their new names.
struct Moved<P>(P);

impl<P: figment::Provider> figment::Provider for Moved<P> {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, figment::value::Dict>, figment::Error> {
        let mut data = self.0.data()?;
        for dict in data.values_mut() {
            for (old, new) in MOVED_KEYS {
                move_key(dict, old, new);
            }
        }
        Ok(data)
    }

    fn profile(&self) -> Option<Profile> {
        self.0.profile()
    }
}

fn move_key(dict: &mut figment::value::Dict, old: &str, new: &str) {
    use figment::value::{Dict, Value};
    let ((old_section, old_field), (new_section, new_field)) =
        (old.split_once('.').expect("section.field"), new.split_once('.').expect("section.field"));
    let Some(Value::Dict(_, section)) = dict.get_mut(old_section) else { return };
    let Some(value) = section.remove(old_field) else { return };
    if let Value::Dict(_, fields) = dict.entry(new_section.to_owned()).or_insert_with(|| Dict::new().into()) {
        fields.entry(new_field.to_owned()).or_insert(value);
    }
}

/// `AISHA_` variables that steer loading itself rather than name a key.
const LOADER_VARS: [&str; 2] = ["PROFILE", "CONFIG"];

/// Keys whose value may come from a file: every variable that sets one also
/// has a `…_FILE` twin naming a file that holds the value (Docker and
/// Kubernetes secrets are mounted as files, so the value never sits in the
/// environment, where `docker inspect` and `/proc/PID/environ` show it).
pub const SECRET_KEYS: &[&str] = &[
    "telegram.token",
    "telegram.webhook_secret",
    "openai.api_key",
    "fal.key",
    "fal.files_secret",
    "s3.access_key",
    "s3.secret_key",
    "database.url",
    "redis.url",
];

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub profile: Option<String>,
    pub config_path: Option<PathBuf>,
    pub mode: Option<Mode>,
}

/// What the command about to run needs from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `run`: everything the daemon connects to.
    Run,
    /// `migrate`, `admin`: the database.
    Database,
    /// `config`, `health`: only that what is set is well-formed.
    Inspect,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {message}{}", env_hint(.key))]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl SettingsError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

/// Every environment variable that sets `key`, for the error line.
pub fn env_names(key: &str) -> Vec<String> {
    let mut names = vec![format!("AISHA_{}", key.to_ascii_uppercase().replace('.', "__"))];
    names.extend(LEGACY_ENV.iter().rev().filter(|(_, k)| *k == key).map(|(var, _)| var.to_string()));
    names
}

fn env_hint(key: &str) -> String {
    if key.is_empty() || key == "config" {
        return String::new();
    }
    let file = if SECRET_KEYS.contains(&key) { ", or a _FILE twin naming a file" } else { "" };
    format!(" (set by {}{file})", env_names(key).join(" or "))
}

pub fn profile_name(options: &LoadOptions) -> String {
    options.profile.clone().or_else(|| std::env::var("AISHA_PROFILE").ok()).unwrap_or_else(|| "dev".to_owned())
}

/// The layered figment, before extraction; public so tests can inspect it.
pub fn figment(options: &LoadOptions) -> Result<Figment, SettingsError> {
    let explicit = options.config_path.clone().or_else(|| std::env::var_os("AISHA_CONFIG").map(PathBuf::from));
    let path = explicit.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    if explicit.is_some() && !path.is_file() {
        return Err(SettingsError::new("config", format!("config file {} does not exist", path.display())));
    }

    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if path.is_file() {
        figment = figment.merge(Moved(Toml::file(&path).nested()));
    }
    for (var, key) in LEGACY_ENV {
        figment = figment.merge(Env::raw().only(&[var]).map(move |_| (*key).into()).global());
    }
    let file_twins: Vec<String> = secret_file_vars().map(|(var, _)| var).collect();
    figment = figment.merge(Moved(
        Env::prefixed("AISHA_")
            .ignore(&LOADER_VARS)
            .filter(move |name| {
                !file_twins.iter().any(|twin| name.as_str().eq_ignore_ascii_case(&twin["AISHA_".len()..]))
            })
            .split("__")
            .global(),
    ));
    figment = figment.merge(Serialized::globals(secrets_from_files()?));
    if let Some(mode) = options.mode {
        figment = figment.merge(Serialized::global("mode", mode));
    }
    Ok(figment.select(Profile::new(&profile_name(options))))
}

/// `(VAR_FILE, key)` for every variable that can set a secret key.
fn secret_file_vars() -> impl Iterator<Item = (String, &'static str)> {
    SECRET_KEYS.iter().flat_map(|key| env_names(key).into_iter().map(move |var| (format!("{var}_FILE"), *key)))
}

/// The secrets read from the files `…_FILE` variables name, as nested
/// tables. Where several twins name one key, the first in precedence order
/// wins, as among the plain variables; a key set both by a variable and by
/// a file is refused: which one was meant would be a guess.
fn secrets_from_files() -> Result<figment::value::Dict, SettingsError> {
    let mut values = std::collections::BTreeMap::<&str, String>::new();
    for (twin, key) in secret_file_vars() {
        let Some(path) = std::env::var_os(&twin) else { continue };
        if let Some(var) = env_names(key).into_iter().find(|var| std::env::var_os(var).is_some()) {
            return Err(SettingsError::new(key, format!("both {var} and {twin} are set; set one")));
        }
        if values.contains_key(key) {
            continue;
        }
        let shown = PathBuf::from(&path).display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SettingsError::new(key, format!("{twin}: cannot read {shown}: {e}")))?;
        // Files written by `echo` or an editor end with a newline that is not part of the secret.
        let value = text.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(SettingsError::new(key, format!("{twin}: {shown} is empty")));
        }
        values.insert(key, value.to_owned());
    }
    let mut dict = figment::value::Dict::new();
    for (key, value) in values {
        let (section, field) = key.split_once('.').expect("secret keys are section.field");
        let table = dict.entry(section.to_owned()).or_insert_with(|| figment::value::Dict::new().into());
        if let figment::value::Value::Dict(_, fields) = table {
            fields.insert(field.to_owned(), value.into());
        }
    }
    Ok(dict)
}

pub fn load(options: &LoadOptions, purpose: Purpose) -> Result<Settings, SettingsError> {
    let figment = figment(options)?;
    if purpose != Purpose::Inspect {
        refuse_placeholders(&figment)?;
    }
    let mut settings: Settings = figment.extract().map_err(|e| from_figment(&figment, e))?;
    if settings.instance_id.trim().is_empty() {
        settings.instance_id = default_instance_id();
    }
    validate(&settings, purpose)?;
    if !settings.links.allow_ranges.is_empty() && profile_name(options) != "test" {
        return Err(SettingsError::new(
            "links.allow_ranges",
            "private ranges may be allowed only in the test profile: anywhere else a link could reach internal services",
        ));
    }
    Ok(settings)
}

/// What the deployment files ship where only the operator knows the value
/// (an endpoint, a public URL, a secret): see docs/operations.md, "Deploying".
pub const PLACEHOLDER: &str = "replace-me";

/// A setting still holding [`PLACEHOLDER`] stops start-up naming its key, so
/// a file applied unedited fails at once and says what to set, rather than
/// running against an address that does not exist. Its value is never shown.
fn refuse_placeholders(figment: &Figment) -> Result<(), SettingsError> {
    let merged: figment::value::Value = figment.extract().map_err(|e| from_figment(figment, e))?;
    match placeholder_key(&merged, String::new()) {
        Some(key) => Err(SettingsError::new(
            key,
            format!("still holds the placeholder {PLACEHOLDER:?} the deployment file ships: set it (docs/operations.md, \"Deploying\")"),
        )),
        None => Ok(()),
    }
}

fn placeholder_key(value: &figment::value::Value, path: String) -> Option<String> {
    use figment::value::Value;
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::String(_, text) => text.to_ascii_lowercase().contains(PLACEHOLDER).then_some(path),
        Value::Dict(_, dict) => dict.iter().find_map(|(key, v)| placeholder_key(v, join(key))),
        Value::Array(_, items) => items.iter().find_map(|v| placeholder_key(v, path.clone())),
        _ => None,
    }
}

fn from_figment(figment: &Figment, error: figment::Error) -> SettingsError {
    let key = error.path.join(".");
    let source = error.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
    let profile = figment.profile().as_str().to_string();
    let key = if key.is_empty() { format!("[{profile}]") } else { key };
    let message = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key {field:?}{source}"),
        kind => format!("{kind}{source}"),
    };
    let key = match &error.kind {
        // figment's path already ends with the unknown field when it is nested.
        figment::error::Kind::UnknownField(field, _) if error.path.is_empty() => field.clone(),
        _ => key,
    };
    SettingsError::new(key, message)
}

fn default_instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("aishad-{}", std::process::id()))
}

fn require(key: &str, present: bool) -> Result<(), SettingsError> {
    if present {
        Ok(())
    } else {
        Err(SettingsError::new(key, "is required but not set"))
    }
}

fn check_url(key: &str, value: &str) -> Result<(), SettingsError> {
    if value.is_empty() {
        return Ok(());
    }
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(SettingsError::new(key, format!("expected an http(s) URL, got scheme {:?}", u.scheme()))),
        Err(e) => Err(SettingsError::new(key, format!("is not a valid URL: {e}"))),
    }
}

pub fn validate(settings: &Settings, purpose: Purpose) -> Result<(), SettingsError> {
    use aisha_actors::{cache, store};

    let db = &settings.database.url;
    if !db.is_empty() {
        store::parse_url(db).map_err(|e| SettingsError::new("database.url", e.reason()))?;
    }
    if settings.database.min_connections > settings.database.pool_size {
        return Err(SettingsError::new("database.min_connections", "must be at most database.pool_size"));
    }
    if !settings.redis.url.is_empty() {
        cache::parse_url(settings.redis.url.expose()).map_err(|e| SettingsError::new("redis.url", e.reason()))?;
    }
    if !settings.redis.tls_ca_file.is_empty() {
        cache::tls_config(&settings.redis.tls_ca_file)
            .map_err(|e| SettingsError::new("redis.tls_ca_file", e.to_string()))?;
    }
    if !settings.s3.endpoint.is_empty() {
        check_url("s3.endpoint", &settings.s3.endpoint_url())?;
    }
    check_url("s3.public_endpoint", &settings.s3.public_endpoint)?;
    check_url("telegram.api_url", &settings.telegram.api_url)?;
    check_url("telegram.webhook_url", &settings.telegram.webhook_url)?;
    check_url("openai.base_url", &settings.openai.base_url)?;
    aisha_actors::clients::links::Guard::new(&settings.links.allow_ranges)
        .map_err(|e| SettingsError::new("links.allow_ranges", e))?;
    if settings.links.probe_max_bytes.0 > settings.links.max_bytes.0 {
        return Err(SettingsError::new("links.probe_max_bytes", "must not exceed links.max_bytes"));
    }
    check_fal(&settings.fal)?;
    check_translation(&settings.translation)?;
    if settings.http.max_connections == 0 {
        return Err(SettingsError::new("http.max_connections", "must be at least 1"));
    }
    tracing_subscriber::EnvFilter::try_new(&settings.log.level)
        .map_err(|e| SettingsError::new("log.level", format!("is not a valid filter: {e}")))?;
    check_rates(settings)?;

    match purpose {
        Purpose::Inspect => {}
        Purpose::Database => require("database.url", !db.is_empty())?,
        Purpose::Run => {
            require("database.url", !db.is_empty())?;
            require("redis.url", !settings.redis.url.is_empty())?;
            require("s3.endpoint", !settings.s3.endpoint.is_empty())?;
            require("s3.access_key", !settings.s3.access_key.is_empty())?;
            require("s3.secret_key", !settings.s3.secret_key.is_empty())?;
            require("telegram.token", !settings.telegram.token.is_empty())?;
        }
    }
    Ok(())
}

/// FAL's models (each with a model file of its product) and addresses.
fn check_fal(fal: &aisha_actors::settings::FalSettings) -> Result<(), SettingsError> {
    use aisha_actors::fal_job::models::{self, Product};
    for product in [Product::TextToImage, Product::AvatarImage, Product::Training] {
        models::model_for(product, product.configured(fal)).map_err(|e| SettingsError::new(product.setting(), e))?;
    }
    check_url("fal.queue_url", &fal.queue_url)?;
    check_url("fal.jwks_url", &fal.jwks_url)?;
    check_url("fal.webhook_url", &fal.webhook_url)?;
    if !fal.insecure_http {
        for (key, value) in [("fal.queue_url", &fal.queue_url), ("fal.jwks_url", &fal.jwks_url)] {
            if value.starts_with("http://") {
                return Err(SettingsError::new(
                    key,
                    "must be https (fal.insecure_http = true allows http, for tests only)",
                ));
            }
        }
    }
    Ok(())
}

/// The languages offered for translation: each one the bot can name, once,
/// and no more than a menu holds.
fn check_translation(translation: &aisha_actors::settings::TranslationSettings) -> Result<(), SettingsError> {
    use aisha_actors::chat::texts::SPOKEN_LANGUAGES;
    let languages = &translation.languages;
    if languages.is_empty() || languages.len() > 12 {
        return Err(SettingsError::new("translation.languages", "must list 1 to 12 languages"));
    }
    for (i, code) in languages.iter().enumerate() {
        if code == "auto" || !SPOKEN_LANGUAGES.iter().any(|(known, _)| known == code) {
            let known: Vec<&str> = SPOKEN_LANGUAGES.iter().map(|(c, _)| *c).filter(|c| *c != "auto").collect();
            return Err(SettingsError::new(
                "translation.languages",
                format!("{code}: not one of {}", known.join(", ")),
            ));
        }
        if languages[..i].contains(code) {
            return Err(SettingsError::new("translation.languages", format!("{code} is listed twice")));
        }
    }
    Ok(())
}

/// Send rates and the supervisor's restarts: none may be zero or inverted.
fn check_rates(settings: &Settings) -> Result<(), SettingsError> {
    let telegram = &settings.telegram;
    for (key, value) in [
        ("telegram.send_per_second", telegram.send_per_second),
        ("telegram.send_per_chat_second", telegram.send_per_chat_second),
        ("telegram.send_per_group_minute", telegram.send_per_group_minute),
    ] {
        if value == 0 {
            return Err(SettingsError::new(key, "must be at least 1"));
        }
    }
    let paid = &telegram.paid_broadcast;
    if paid.enabled && !(1..=1000 - telegram.send_per_second.min(1000)).contains(&paid.per_second) {
        return Err(SettingsError::new(
            "telegram.paid_broadcast.per_second",
            "must be at least 1, and with telegram.send_per_second at most 1000 (Telegram's paid rate)",
        ));
    }
    if paid.enabled && paid.daily_stars == 0 {
        return Err(SettingsError::new("telegram.paid_broadcast.daily_stars", "must be at least 1 when enabled"));
    }
    if !(0.0..=0.5).contains(&telegram.send_headroom) {
        return Err(SettingsError::new("telegram.send_headroom", "must be from 0 to 0.5"));
    }
    if !(telegram.local_send_share > 0.0 && telegram.local_send_share <= 1.0) {
        return Err(SettingsError::new("telegram.local_send_share", "must be above 0 and at most 1"));
    }
    let sup = &settings.supervisor;
    if sup.max_restarts == 0 {
        return Err(SettingsError::new("supervisor.max_restarts", "must be at least 1"));
    }
    if sup.backoff_min > sup.backoff_max {
        return Err(SettingsError::new("supervisor.backoff_min", "must not exceed supervisor.backoff_max"));
    }

    Ok(())
}

/// The effective settings as TOML, secrets shown as `***`.
pub fn render(settings: &Settings) -> String {
    toml::to_string_pretty(settings).unwrap_or_else(|e| format!("# could not render settings: {e}\n"))
}
