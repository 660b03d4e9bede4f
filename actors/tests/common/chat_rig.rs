//! A bot with transcription workers on the real services and the Bot API
//! and OpenAI fakes: a poller, then `workers` as another replica would run them.

use std::collections::BTreeMap;
use std::time::Duration;

use aisha_actors::poller::{PollerMsg, TelegramPoller};
use aisha_actors::pool::{JobPool, JobPoolArgs, PoolMsg};
use aisha_actors::secret::Secret;
use aisha_actors::services::Services;
use aisha_actors::transcriber::Transcriber;
use aisha_testkit::{eventually, FakeOpenAi, FakeTelegram};
use ractor::{Actor, ActorRef};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Rig {
    pub telegram: FakeTelegram,
    pub openai: FakeOpenAi,
    pub services: Services,
    pub poller: ActorRef<PollerMsg>,
    pub user: i64,
}

/// The rig, with `user` greeted (`/start`: the welcome bonus credited).
pub async fn rig(name: &str, token: &str, user: i64, tweak: impl FnOnce(&mut aisha_actors::settings::Settings)) -> Rig {
    let telegram = FakeTelegram::start(token).await;
    let openai = FakeOpenAi::start("sk-test-key").await;
    let (telegram_url, openai_url) = (telegram.url(), openai.url());
    let (_test, services) = super::services(name, |s| {
        super::use_telegram(s, token, telegram_url);
        s.openai.api_key = Secret::new("sk-test-key");
        s.openai.base_url = openai_url;
        super::fast_jobs(s);
        tweak(s);
    })
    .await;
    services.blob.ensure_bucket().await.unwrap();
    let (poller, _) = Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    telegram.push_text(user, "en", "/start");
    eventually("welcome", WAIT, || telegram.sent_texts(user).len() == 1).await;
    Rig { telegram, openai, services, poller, user }
}

pub async fn workers(services: &Services, instance: &str) -> ActorRef<PoolMsg> {
    let services = super::as_instance(services, instance);
    let handlers: BTreeMap<_, _> =
        Transcriber::handlers(services.clone()).unwrap().into_iter().map(|(k, h)| (k.to_owned(), h)).collect();
    Actor::spawn(None, JobPool, JobPoolArgs { services, handlers }).await.unwrap().0
}

impl Rig {
    /// Transcripts sent to `chat` (the user's private chat, or a group).
    pub fn transcripts_in(&self, chat: i64) -> Vec<String> {
        self.telegram.sent_texts(chat).into_iter().filter(|t| t.starts_with("📝 Transcript")).collect()
    }

    pub fn transcripts_sent(&self) -> Vec<String> {
        self.transcripts_in(self.user)
    }

    /// The one row `sql` selects.
    pub async fn row(&self, sql: &str) -> tokio_postgres::Row {
        self.services.db.client().await.unwrap().query_one(sql, &[]).await.unwrap()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        self.row(sql).await.get(0)
    }

    pub async fn balance_of(&self, telegram_id: i64) -> i64 {
        self.scalar(&format!("SELECT balance FROM users WHERE telegram_id = {telegram_id}")).await
    }

    /// Waits until every recorded update has been handled.
    pub async fn all_handled(&self) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.scalar("SELECT count(*) FROM telegram_updates WHERE handled_at IS NULL").await > 0 {
            assert!(std::time::Instant::now() < deadline, "updates left unhandled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn balance(&self) -> i64 {
        self.balance_of(self.user).await
    }

    /// The newest sendMessage to `chat` whose text starts with `prefix`, as sent.
    /// The labels of the buttons in row `row` of a message's inline keyboard.
    pub fn button_labels(message: &serde_json::Value, row: usize) -> Vec<String> {
        let buttons = message["reply_markup"]["inline_keyboard"][row].as_array().cloned().unwrap_or_default();
        buttons.iter().filter_map(|b| b["text"].as_str().map(str::to_owned)).collect()
    }

    pub fn last_message_starting(&self, chat: i64, prefix: &str) -> Option<serde_json::Value> {
        self.telegram
            .calls("sendMessage")
            .into_iter()
            .rev()
            .filter(|c| !c.failed && c.params["chat_id"].as_i64() == Some(chat))
            .find(|c| c.params["text"].as_str().unwrap_or_default().starts_with(prefix))
            .map(|c| c.params)
    }

    /// Documents sent to `chat`: (file name, text).
    pub fn documents(&self, chat: i64) -> Vec<(String, String)> {
        self.telegram
            .calls("sendDocument")
            .into_iter()
            .filter(|c| c.params["chat_id"].as_i64() == Some(chat))
            .map(|c| {
                let doc = &c.params["document"];
                (
                    doc["file_name"].as_str().unwrap_or_default().to_owned(),
                    doc["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    pub fn stop(&self) {
        self.poller.stop(None);
    }

    /// The newest delivered transcript: marked so just after its message
    /// went out, so a test that saw the message may wait a moment for the mark.
    pub async fn delivered_transcript(&self) -> i64 {
        let started = std::time::Instant::now();
        loop {
            let id = self.scalar("SELECT coalesce(max(id), 0) FROM transcripts WHERE delivered_at IS NOT NULL").await;
            if id > 0 {
                return id;
            }
            assert!(started.elapsed() < WAIT, "no transcript was marked delivered within {WAIT:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `HH:MM:SS,mmm --> …` lines of an SRT file, as (start, end) seconds.
pub fn srt_times(srt: &str) -> Vec<(f64, f64)> {
    let seconds = |t: &str| {
        let (hms, ms) = t.trim().split_once(',').unwrap();
        let parts: Vec<f64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().unwrap() / 1000.0
    };
    srt.lines().filter_map(|l| l.split_once(" --> ")).map(|(a, b)| (seconds(a), seconds(b))).collect()
}
