//! The typed configuration every component reads. Loading (figment layers,
//! legacy variable names, exit 78) lives in the daemon crate; this is the shape.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::{ConnUrl, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Polling,
    Worker,
    Webhook,
    All,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Polling, Mode::Worker, Mode::Webhook, Mode::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Polling => "polling",
            Mode::Worker => "worker",
            Mode::Webhook => "webhook",
            Mode::All => "all",
        }
    }

    pub fn polls(self) -> bool {
        matches!(self, Mode::Polling | Mode::All)
    }
    pub fn works(self) -> bool {
        matches!(self, Mode::Worker | Mode::All)
    }
    pub fn serves_webhooks(self) -> bool {
        matches!(self, Mode::Webhook | Mode::All)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown mode {s:?} (expected polling, worker, webhook or all)"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// A size in bytes, written as a number or as `"20MiB"`, `"512KB"`, `"1GiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        Self(n * 1024 * 1024)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let number: u64 = number.parse().map_err(|_| format!("invalid size {s:?}"))?;
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" | "k" => 1000,
            "kib" => 1 << 10,
            "mb" | "m" => 1_000_000,
            "mib" => 1 << 20,
            "gb" | "g" => 1_000_000_000,
            "gib" => 1 << 30,
            other => return Err(format!("invalid size unit {other:?} in {s:?}")),
        };
        number.checked_mul(multiplier).map(ByteSize).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub mode: Mode,
    /// This replica's name in logs, leases and job locks.
    pub instance_id: String,
    pub telegram: TelegramSettings,
    pub openai: OpenAiSettings,
    pub fal: FalSettings,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub s3: S3Settings,
    pub log: LogSettings,
    pub http: HttpSettings,
    pub supervisor: SupervisorSettings,
    pub pricing: PricingSettings,
    pub jobs: JobsSettings,
    pub poller: PollerSettings,
    pub intake: IntakeSettings,
    pub transcription: TranscriptionSettings,
    pub translation: TranslationSettings,
    pub links: LinksSettings,
    pub retention: RetentionSettings,
    pub payments: PaymentsSettings,
    pub limits: LimitsSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::All,
            instance_id: String::new(),
            telegram: TelegramSettings::default(),
            openai: OpenAiSettings::default(),
            fal: FalSettings::default(),
            database: DatabaseSettings::default(),
            redis: RedisSettings::default(),
            s3: S3Settings::default(),
            log: LogSettings::default(),
            http: HttpSettings::default(),
            supervisor: SupervisorSettings::default(),
            pricing: PricingSettings::default(),
            jobs: JobsSettings::default(),
            poller: PollerSettings::default(),
            intake: IntakeSettings::default(),
            transcription: TranscriptionSettings::default(),
            translation: TranslationSettings::default(),
            links: LinksSettings::default(),
            retention: RetentionSettings::default(),
            payments: PaymentsSettings::default(),
            limits: LimitsSettings::default(),
        }
    }
}

impl Settings {
    /// Every secret value in force, for the log redactor.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            &self.telegram.token,
            &self.telegram.webhook_secret,
            &self.openai.api_key,
            &self.fal.key,
            &self.fal.files_secret,
            &self.s3.secret_key,
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.expose().to_owned())
        .collect();
        out.extend(self.database.url.password());
        out.extend(self.redis.url.password());
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    pub token: Secret,
    pub api_url: String,
    /// getUpdates long-poll timeout.
    #[serde(with = "humantime_serde")]
    pub poll_timeout: Duration,
    /// Time-to-live of the Redis poller lease; a standby takes over within it.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// `X-Telegram-Bot-Api-Secret-Token` for `POST /webhooks/telegram`;
    /// when set, the webhook listener takes Telegram updates too.
    pub webhook_secret: Secret,
    /// When set (with the secret), the webhook listener registers this URL
    /// with setWebhook at start. Use polling or a webhook, not both: a
    /// polling replica deletes the webhook.
    pub webhook_url: String,
    /// Messages a second the whole bot may send (Telegram: about 30).
    pub send_per_second: u32,
    /// Messages a second to one chat (Telegram: 1).
    pub send_per_chat_second: u32,
    /// Messages a minute to one group or channel (Telegram: 20).
    pub send_per_group_minute: u32,
    /// The fraction of each limit left unused (0.05: the bot sends at 95 %
    /// of each rate, so a message may reach Telegram up to 52 ms later than
    /// the one 30 after it; measured in docs/benchmarks.md), for the jitter
    /// between a slot and its arrival at Telegram, which counts on its own
    /// clock and refuses a message over.
    pub send_headroom: f64,
    /// The share of each limit one process keeps to on its own while Redis,
    /// where every process of the bot shares the limits, is slow or away.
    pub local_send_share: f64,
    /// Past the free rate: messages sent with `allow_paid_broadcast`.
    pub paid_broadcast: PaidBroadcastSettings,
    /// `api_url` is a self-hosted Bot API server started with `--local`:
    /// files up to 2000 MB, read from its disk instead of downloaded.
    pub local_api: bool,
    /// Where that server's working directory is mounted here (a shared
    /// volume, at the same path as on the server): getFile's absolute paths
    /// must lie under it.
    pub local_files_dir: String,
}

/// Telegram lets a bot send up to 1,000 messages a second past its free
/// 30 with `allow_paid_broadcast`, for 0.1 Star a message from the bot's
/// balance. An operator's choice, off by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaidBroadcastSettings {
    pub enabled: bool,
    /// Paid messages a second, beside the free ones (Telegram allows 1000
    /// in all).
    pub per_second: u32,
    /// Stars the bot may spend on it in a day (UTC); past them it waits
    /// for free slots again.
    pub daily_stars: u32,
    /// A message whose free slot is further off than this goes paid. A
    /// quarter of a second: at a second, a burst's last messages each waited
    /// up to a second for a free slot, to save 0.1 Star apiece (paired runs
    /// of the paid bench: 0.4-1.8 s sooner, 2 % more paid messages).
    #[serde(with = "humantime_serde")]
    pub after: Duration,
}

impl Default for PaidBroadcastSettings {
    fn default() -> Self {
        Self { enabled: false, per_second: 900, daily_stars: 100, after: Duration::from_millis(250) }
    }
}

/// What one message sent with `allow_paid_broadcast` costs: 0.1 Star.
pub const PAID_BROADCAST_TENTHS_OF_A_STAR: u64 = 1;

/// What a bot may download through the public Bot API.
pub const CLOUD_MAX_DOWNLOAD: u64 = 20 * 1024 * 1024;
/// What a local Bot API server (`--local`) hands over.
pub const LOCAL_MAX_DOWNLOAD: u64 = 2000 * 1024 * 1024;

impl TelegramSettings {
    /// The largest file this bot can fetch.
    pub fn max_download(&self) -> u64 {
        if self.local_api {
            LOCAL_MAX_DOWNLOAD
        } else {
            CLOUD_MAX_DOWNLOAD
        }
    }
}

impl Default for TelegramSettings {
    fn default() -> Self {
        Self {
            token: Secret::default(),
            api_url: "https://api.telegram.org".into(),
            poll_timeout: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(15),
            webhook_secret: Secret::default(),
            webhook_url: String::new(),
            send_per_second: 30,
            send_per_chat_second: 1,
            send_per_group_minute: 20,
            send_headroom: 0.05,
            local_send_share: 0.25,
            paid_broadcast: PaidBroadcastSettings::default(),
            local_api: false,
            local_files_dir: "/var/lib/telegram-bot-api".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSettings {
    pub api_key: Secret,
    pub base_url: String,
    pub transcription_model: String,
    /// Transcribes with speakers (`diarized_json`): who said what.
    pub diarization_model: String,
    pub chat_model: String,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for OpenAiSettings {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            base_url: "https://api.openai.com/v1".into(),
            transcription_model: "whisper-1".into(),
            diarization_model: "gpt-4o-transcribe-diarize".into(),
            chat_model: "gpt-4o-mini".into(),
            timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FalSettings {
    pub key: Secret,
    pub queue_url: String,
    pub jwks_url: String,
    /// Our FAL account's user id: callbacks signed for any other account are
    /// refused. Empty accepts any FAL account's callbacks (a warning at start).
    pub user_id: String,
    /// Hosts result files may be downloaded from (`*.` for subdomains); the
    /// status and result URLs, which get our key, must be on `queue_url`'s host.
    pub download_hosts: Vec<String>,
    /// Allows `http://` for queue_url and jwks_url: for tests against fakes only.
    pub insecure_http: bool,
    /// The public URL FAL calls back: the webhook listener's `/webhooks/fal`.
    /// Empty: no callbacks, every request is polled.
    pub webhook_url: String,
    /// Base URL FAL downloads training archives and LoRA weights from
    /// (`{public_url}/files/{token}`); empty: the origin of `webhook_url`.
    pub public_url: String,
    /// Key of the HMAC that signs `/files/{token}` links.
    pub files_secret: Secret,
    #[serde(with = "humantime_serde")]
    pub file_link_ttl: Duration,
    pub training_model: String,
    pub training_steps: u32,
    pub trigger_phrase: String,
    pub image_model: String,
    pub text_to_image_model: String,
    pub num_images: u8,
    pub lora_scale: f64,
    /// Poll a request that has had no callback for this long.
    #[serde(with = "humantime_serde")]
    pub poll_after: Duration,
    #[serde(with = "humantime_serde")]
    pub image_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub training_timeout: Duration,
    /// How long verified JWKS keys are trusted before they are fetched again.
    #[serde(with = "humantime_serde")]
    pub jwks_cache: Duration,
    /// Callbacks whose timestamp is further off than this are refused.
    #[serde(with = "humantime_serde")]
    pub timestamp_tolerance: Duration,
    pub min_photos: usize,
    pub max_photos: usize,
    pub delete_photos_after_training: bool,
    /// Whether cancelling a training refunds it.
    pub refund_cancelled_training: bool,
}

impl Default for FalSettings {
    fn default() -> Self {
        Self {
            key: Secret::default(),
            queue_url: "https://queue.fal.run".into(),
            jwks_url: "https://rest.alpha.fal.ai/.well-known/jwks.json".into(),
            user_id: String::new(),
            download_hosts: ["fal.media", "*.fal.media", "*.fal.run", "*.fal.ai"].map(String::from).to_vec(),
            insecure_http: false,
            webhook_url: String::new(),
            public_url: String::new(),
            files_secret: Secret::default(),
            file_link_ttl: Duration::from_secs(6 * 3600),
            training_model: "fal-ai/flux-lora-portrait-trainer".into(),
            training_steps: 1000,
            trigger_phrase: "ohwx person".into(),
            image_model: "fal-ai/flux-lora".into(),
            text_to_image_model: "fal-ai/imagen4/preview".into(),
            num_images: 1,
            lora_scale: 1.0,
            poll_after: Duration::from_secs(90),
            image_timeout: Duration::from_secs(3600),
            training_timeout: Duration::from_secs(3 * 3600),
            jwks_cache: Duration::from_secs(24 * 3600),
            timestamp_tolerance: Duration::from_secs(300),
            min_photos: 10,
            max_photos: 20,
            delete_photos_after_training: false,
            refund_cancelled_training: true,
        }
    }
}

impl FalSettings {
    /// Where `/files/{token}` links point.
    pub fn files_base(&self) -> String {
        if !self.public_url.is_empty() {
            return self.public_url.trim_end_matches('/').to_owned();
        }
        url::Url::parse(&self.webhook_url).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: ConnUrl,
    pub pool_size: usize,
    /// Connections opened as the process starts, so a spike's first jobs
    /// do not each open one (a fork, an authentication and cold caches on
    /// the server); they stay open, idle, as the pool keeps every
    /// connection it opened. 0: opened as the work asks.
    pub min_connections: usize,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// `run` applies pending migrations before starting the actors.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: ConnUrl::default(),
            pool_size: 16,
            min_connections: 0,
            connect_timeout: Duration::from_secs(5),
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://`, or `rediss://` for TLS (the server's certificate and name verified).
    pub url: ConnUrl,
    /// Prefix of every key this bot writes, so several bots (or tests) share one Redis.
    pub key_prefix: String,
    /// For `rediss://`: a PEM file of the CAs to trust; empty: the Mozilla roots.
    pub tls_ca_file: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: ConnUrl::default(), key_prefix: "aisha:".into(), tls_ca_file: String::new() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// `host:port` (scheme from `secure`) or a full URL.
    pub endpoint: String,
    pub secure: bool,
    pub access_key: Secret,
    pub secret_key: Secret,
    pub bucket: String,
    /// Prefix of every object key, so several bots (or tests) can share a bucket.
    pub key_prefix: String,
    pub region: String,
    /// When set, FAL is handed presigned URLs on this endpoint instead of `/files/{token}`.
    pub public_endpoint: String,
}

impl S3Settings {
    pub fn endpoint_url(&self) -> String {
        if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            let scheme = if self.secure { "https" } else { "http" };
            format!("{scheme}://{}", self.endpoint)
        }
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            secure: false,
            access_key: Secret::default(),
            secret_key: Secret::default(),
            bucket: "aisha".into(),
            key_prefix: String::new(),
            region: "us-east-1".into(),
            public_endpoint: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter: `info`, `debug`, `aisha_actors=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Json }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub webhook_bind: SocketAddr,
    pub telemetry_bind: SocketAddr,
    /// Largest webhook body accepted; larger gets 413.
    pub max_body: ByteSize,
    /// Connections open at once per listener; more wait in the backlog.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            webhook_bind: ([0, 0, 0, 0], 8080).into(),
            telemetry_bind: ([0, 0, 0, 0], 9090).into(),
            max_body: ByteSize::mib(1),
            max_connections: 512,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorSettings {
    /// More restarts than this within `period` stops the tree (exit 70).
    pub max_restarts: u32,
    #[serde(with = "humantime_serde")]
    pub period: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How long SIGTERM waits for in-flight work before stopping hard.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
}

impl Default for SupervisorSettings {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(60),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Prices in coins.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingSettings {
    /// Credited once, on a user's first `/start`.
    pub welcome_bonus: i64,
    /// Per started minute of audio.
    pub transcription_per_minute: i64,
    /// Per started minute of audio transcribed with speakers (who said what).
    pub diarization_per_minute: i64,
    /// `/imagine`: text to image.
    pub text_to_image: i64,
    /// `/generate`: an image from the user's avatar.
    pub avatar_image: i64,
    pub avatar_training: i64,
    /// Summary, action items, minutes of a transcript.
    pub transcript_digest: i64,
    /// A transcript translated into another language (0: free).
    pub translation: i64,
}

impl Default for PricingSettings {
    fn default() -> Self {
        Self {
            welcome_bonus: 100,
            transcription_per_minute: 1,
            diarization_per_minute: 2,
            text_to_image: 5,
            avatar_image: 8,
            avatar_training: 150,
            transcript_digest: 1,
            translation: 1,
        }
    }
}

impl PricingSettings {
    /// Per started minute of a transcription, with speakers or without.
    pub fn transcription_rate(&self, speakers: bool) -> i64 {
        if speakers {
            self.diarization_per_minute
        } else {
            self.transcription_per_minute
        }
    }
}

/// Retry and concurrency rules for one job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobKindSettings {
    /// Attempts before the job is dead (user told, refunded).
    pub max_attempts: i32,
    /// Jobs of this kind running at once across every worker.
    pub concurrency: i64,
    /// Jobs of this kind one worker process runs at once.
    pub workers: usize,
}

impl Default for JobKindSettings {
    fn default() -> Self {
        Self { max_attempts: 5, concurrency: 16, workers: 4 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSettings {
    /// A claimed job's lease; a worker renews it every third of this. A
    /// worker that dies leaves its jobs to others once it lapses.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// The safety-net poll beside LISTEN/NOTIFY.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_min: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Per kind (`transcribe`, `fal.train`, …); kinds not listed use `default`.
    pub kinds: std::collections::BTreeMap<String, JobKindSettings>,
    pub default: JobKindSettings,
}

impl JobsSettings {
    pub fn kind(&self, kind: &str) -> JobKindSettings {
        self.kinds.get(kind).copied().unwrap_or(self.default)
    }
}

impl Default for JobsSettings {
    fn default() -> Self {
        Self {
            // A killed worker's job resumes elsewhere within lease + poll_interval
            // (≤ 9 s); under its own INSTANCE_ID at once (see pool::presence).
            lease: Duration::from_secs(6),
            poll_interval: Duration::from_secs(3),
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            // A transcription is CPU work (ffmpeg): fewer at once than the I/O-bound kinds.
            kinds: [("transcribe".to_owned(), JobKindSettings { max_attempts: 5, concurrency: 8, workers: 2 })].into(),
            default: JobKindSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollerSettings {
    /// Updates per getUpdates (1–100).
    pub batch: u8,
}

impl Default for PollerSettings {
    fn default() -> Self {
        Self { batch: 100 }
    }
}

/// How updates get in, whichever way they come (the poller's getUpdates or
/// Telegram's push to the webhook). These were `poller.*` keys; the old
/// names are still read (see the daemon's `MOVED_KEYS`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeSettings {
    /// Chats handled at once; one chat's updates are always handled in order.
    /// A handler mostly waits (on the database, on the Bot API), and the
    /// ones handled together share their statements, so more at once is
    /// more throughput; the step that holds megabytes (an avatar photo) has
    /// its own, smaller bound.
    pub max_concurrent_chats: usize,
    /// Recorded but unhandled updates above which no more are taken: the
    /// poller stops fetching, the webhook answers 503 (Telegram resends).
    pub max_pending: usize,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self { max_concurrent_chats: 512, max_pending: 2000 }
    }
}

/// Recordings from a link (YouTube and the other sites yt-dlp knows, a
/// podcast page, a media file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinksSettings {
    /// A link in a private chat is offered for transcription. Link jobs run
    /// only on workers where `ytdlp` runs (the `aishad-links` image).
    pub enabled: bool,
    /// The yt-dlp program.
    pub ytdlp: String,
    /// The most a link may bring in, page and audio together.
    pub max_bytes: ByteSize,
    /// The most a free reading may bring in, before a price is agreed: a
    /// site that states no length is fetched to be measured, up to this.
    pub probe_max_bytes: ByteSize,
    /// Free readings a user may ask for per hour.
    pub probes_per_hour: u32,
    /// A user's links being read at once.
    pub probes_in_flight: u32,
    /// yt-dlp's address space (`RLIMIT_AS`): a page that inflates to
    /// gigabytes (`Content-Encoding: gzip, gzip`) fails yt-dlp, not the worker.
    pub max_memory: ByteSize,
    /// How long reading what a link holds may take.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// How long fetching its audio may take.
    #[serde(with = "humantime_serde")]
    pub download_timeout: Duration,
    /// Private ranges a link may reach anyway (CIDR): only in the test
    /// profile, for its local servers. Everywhere else links reach public
    /// addresses only.
    pub allow_ranges: Vec<String>,
}

impl Default for LinksSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            ytdlp: "yt-dlp".into(),
            max_bytes: ByteSize(512 * 1024 * 1024),
            // An hour of MP3 at 128 kbit/s, several of Opus.
            probe_max_bytes: ByteSize(64 * 1024 * 1024),
            probes_per_hour: 20,
            probes_in_flight: 2,
            max_memory: ByteSize(1024 * 1024 * 1024),
            probe_timeout: Duration::from_secs(60),
            download_timeout: Duration::from_secs(15 * 60),
            allow_ranges: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscriptionSettings {
    /// Audio longer than this is cut into chunks (at silence where possible).
    #[serde(with = "humantime_serde")]
    pub chunk_length: Duration,
    /// A single upload larger than this is cut too (OpenAI takes 25 MiB).
    pub max_upload: ByteSize,
    /// How far from an ideal cut point a silence may be and still be used.
    #[serde(with = "humantime_serde")]
    pub silence_window: Duration,
    /// Overlap of fixed cuts (no silence found), so no word is lost at the seam.
    #[serde(with = "humantime_serde")]
    pub overlap: Duration,
    /// Chunks of one recording transcribed at once.
    pub parallel_chunks: usize,
    /// Scratch space: audio being unpacked and cut (one subdirectory per job)
    /// and large FAL results on their way to S3; everything is removed after.
    pub temp_dir: String,
    /// Transcripts longer than this many messages go out as a .txt document.
    pub max_messages: usize,
    /// Recordings measured longer than this are refused (and refunded) before any API call.
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Audio transcribed before (the same `file_unique_id`, asked for the
    /// same way) reuses that transcript, free: no download, no API call.
    pub cache_by_file: bool,
    /// In a private chat, a recording of several chunks shows its text so
    /// far as a draft (`sendMessageDraft`) while the rest is transcribed.
    pub stream_drafts: bool,
}

impl Default for TranscriptionSettings {
    fn default() -> Self {
        Self {
            chunk_length: Duration::from_secs(600),
            max_upload: ByteSize::mib(24),
            silence_window: Duration::from_secs(30),
            overlap: Duration::from_secs(1),
            parallel_chunks: 3,
            temp_dir: std::env::temp_dir().join("aishad").to_string_lossy().into_owned(),
            max_messages: 3,
            max_duration: Duration::from_secs(4 * 3600),
            cache_by_file: true,
            stream_drafts: true,
        }
    }
}

/// Transcripts translated ("🌐 Translate", `/translate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranslationSettings {
    /// The languages offered, as ISO-639-1 codes, in the menu's order.
    pub languages: Vec<String>,
}

impl TranslationSettings {
    /// Whether `code` is one of the languages offered.
    pub fn offers(&self, code: &str) -> bool {
        self.languages.iter().any(|offered| offered == code)
    }
}

impl Default for TranslationSettings {
    fn default() -> Self {
        Self { languages: ["en", "ru", "de", "fr", "es", "uk"].map(str::to_owned).to_vec() }
    }
}

/// Coin packages sold for Telegram Stars.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    pub packages: Vec<CoinPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoinPackage {
    /// Stable name, kept with each order (`coins-250`).
    pub id: String,
    pub coins: i64,
    /// Whole Stars (currency XTR).
    pub stars: i64,
    /// On the button and the invoice.
    pub label: String,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        let package = |coins: i64, stars: i64| CoinPackage {
            id: format!("coins-{coins}"),
            coins,
            stars,
            label: format!("{coins} coins"),
        };
        Self { packages: vec![package(250, 100), package(500, 190), package(1000, 350)] }
    }
}

/// What one user may ask for, so no one holds every worker or the intake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Paid requests (anything that charges coins) per user per minute.
    pub paid_per_minute: u32,
    /// A user's jobs queued or running at once.
    pub jobs_in_flight: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self { paid_per_minute: 10, jobs_in_flight: 5 }
    }
}

/// How long raw inputs are kept. Telegram updates carry users' messages
/// and FAL callbacks their results: neither is kept longer than it is useful.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Handled Telegram updates older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub updates: Duration,
    /// Callbacks of finished FAL requests older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub fal_callbacks: Duration,
    /// Callbacks for request ids we never made (another account's, or
    /// junk) are deleted after this; ours are matched within seconds.
    #[serde(with = "humantime_serde")]
    pub orphan_callbacks: Duration,
    /// Finished jobs (done, dead, cancelled) older than this are deleted,
    /// unless a ledger entry, a transcript or a FAL request points at them.
    /// Keep it past Telegram's redelivery window (24 h): a job's key is what
    /// stops a redelivered update from making a second one.
    #[serde(with = "humantime_serde")]
    pub jobs: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            updates: Duration::from_secs(7 * 24 * 3600),
            fal_callbacks: Duration::from_secs(30 * 24 * 3600),
            orphan_callbacks: Duration::from_secs(3600),
            jobs: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!("20MiB".parse::<ByteSize>().unwrap(), ByteSize(20 * 1024 * 1024));
        assert_eq!("1024".parse::<ByteSize>().unwrap(), ByteSize(1024));
        assert_eq!("5 KB".parse::<ByteSize>().unwrap(), ByteSize(5000));
        assert!("12 parsecs".parse::<ByteSize>().is_err());
    }

    #[test]
    fn modes_parse_case_insensitively() {
        assert_eq!("Worker".parse::<Mode>().unwrap(), Mode::Worker);
        assert!("poller".parse::<Mode>().is_err());
    }
}
