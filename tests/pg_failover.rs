//! PostgreSQL moving under the daemons, for real: three Patroni members of
//! the test's own (testkit's `pg_ha`), the daemons on the multi-host URL
//! with `target_session_attrs=read-write`. The primary's postmaster is
//! SIGKILLed, then a planned `patronictl switchover`, while voice notes are
//! at OpenAI, a FAL job is out and a Stars payment arrives: nothing lost,
//! nothing answered, paid for or charged twice, and back within 10 s of
//! the promotion.

use std::path::Path;
use std::time::{Duration, Instant};

use aisha_testkit::audio::voice_note;
use aisha_testkit::daemon::all_mode_env;
use aisha_testkit::fleet::transcripts;
use aisha_testkit::pg_ha::PgHa;
use aisha_testkit::{eventually, first_after, Daemon, FakeFal, FakeOpenAi, FakeTelegram, TestServices};

const TOKEN: &str = "60606:PATRONI-failover-token";
const BIN: &str = env!("CARGO_BIN_EXE_aishad");
const DATABASE: &str = "aisha_ha";
const WAIT: Duration = Duration::from_secs(60);

struct Rig {
    ha: PgHa,
    services: TestServices,
    telegram: FakeTelegram,
    openai: FakeOpenAi,
    fal: FakeFal,
    daemons: Vec<Daemon>,
}

impl Rig {
    /// Two daemons in `all` mode, as two replicas of the simple deployment.
    async fn start(test: &str) -> Self {
        let ha = PgHa::start(test, DATABASE).await;
        let services = TestServices::on_database(test, ha.url(DATABASE), DATABASE);
        let telegram = FakeTelegram::start(TOKEN).await;
        let openai = FakeOpenAi::start("sk-patroni").await;
        openai.set_latency(Duration::from_secs(2));
        let fal = FakeFal::start("fal-patroni").await;
        // Polled, not called back: the request stays out across the failover.
        fal.set_callbacks(false);
        let mut rig = Self { ha, services, telegram, openai, fal, daemons: vec![] };
        for instance in ["ha-1", "ha-2"] {
            let daemon = Daemon::start(Path::new(BIN), &["run"], &rig.env(instance));
            rig.daemons.push(daemon);
        }
        rig
    }

    fn env(&self, instance: &str) -> Vec<(String, String)> {
        let mut env = self.services.env();
        env.extend(all_mode_env(&self.telegram, &self.openai));
        env.extend(
            [
                ("INSTANCE_ID", instance.to_owned()),
                ("FAL_KEY", self.fal.key.clone()),
                ("FAL_QUEUE_URL", self.fal.queue_url()),
                ("FAL_JWKS_URL", self.fal.jwks_url()),
                ("AISHA_FAL__INSECURE_HTTP", "true".to_owned()),
                ("AISHA_FAL__POLL_AFTER", "1s".to_owned()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        env
    }

    async fn welcome(&self, users: &[i64]) {
        for &user in users {
            self.telegram.push_text(user, "en", "/start");
        }
        eventually("welcomed", WAIT, || users.iter().all(|&u| !self.telegram.sent_texts(u).is_empty())).await;
    }

    /// `/topup`'s first package, checked out: its payload and price.
    async fn checked_out(&self, user: i64) -> (String, i64) {
        let before = self.telegram.calls("sendInvoice").len();
        self.telegram.push_callback(user, "en", "topup:0", 1);
        eventually("an invoice", WAIT, || self.telegram.calls("sendInvoice").len() > before).await;
        let invoice = self.telegram.calls("sendInvoice")[before].params.clone();
        let (payload, stars) =
            (invoice["payload"].as_str().unwrap().to_owned(), invoice["prices"][0]["amount"].as_i64().unwrap());
        let id = self.telegram.push_pre_checkout(user, "en", &payload, stars);
        eventually("the checkout answered", WAIT, || {
            self.telegram.pre_checkout(&id).and_then(|q| q.answer).is_some_and(|(ok, _, _)| ok)
        })
        .await;
        (payload, stars)
    }

    fn texts_with(&self, user: i64, needle: &str) -> usize {
        self.telegram.sent_texts(user).iter().filter(|t| t.contains(needle)).count()
    }

    /// The primary goes (`move_primary`) while `users` each have a voice note
    /// at OpenAI: every note answered once, sent to OpenAI once, charged once,
    /// and the first answer after the promotion within 10 s of it.
    async fn voice_notes_through(&self, users: &[i64], what: &str, move_primary: impl AsyncFnOnce(&PgHa) -> Duration) {
        let arrivals = self.openai.transcription_arrivals();
        for &user in users {
            self.telegram.push_voice(user, "en", 2, voice_note("Said while the primary moves."));
        }
        eventually("some notes at OpenAI", WAIT, || self.openai.transcription_arrivals() > arrivals).await;
        let promotion = move_primary(&self.ha).await;
        let promoted = Instant::now();
        eventually("every note transcribed", Duration::from_secs(90), || {
            users.iter().all(|&u| transcripts(&self.telegram, u) >= 1)
        })
        .await;
        let first_answer = first_after(self.telegram.calls("sendMessage").iter().map(|c| c.at), promoted);
        println!(
            "pg failover figure: {what}: a new primary {:.1} s after it began; the first answer {:.1} s after the promotion",
            promotion.as_secs_f64(),
            first_answer.as_secs_f64()
        );
        assert!(first_answer <= Duration::from_secs(10), "{what}: processing back within 10 s: {first_answer:?}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        for &user in users {
            assert_eq!(transcripts(&self.telegram, user), 1, "{what}: user {user} answered once");
        }
        assert_eq!(
            self.openai.transcription_arrivals() - arrivals,
            users.len(),
            "{what}: each note sent to OpenAI once"
        );
        let charges = self
            .services
            .scalar(&format!(
                "SELECT count(*) FROM ledger_entries e JOIN users u ON u.id = e.user_id
                 WHERE e.reason = 'charge' AND u.telegram_id BETWEEN {} AND {}",
                users[0],
                users[users.len() - 1]
            ))
            .await;
        assert_eq!(charges, users.len() as i64, "{what}: each note charged once");
        self.services.assert_ledger_balanced().await;
    }

    /// The primary goes while `user`'s image is at FAL and their Stars
    /// payment arrives: one FAL submission, one photo, one credit.
    async fn image_and_payment_through(
        &self,
        user: i64,
        what: &str,
        move_primary: impl AsyncFnOnce(&PgHa) -> Duration,
    ) {
        let submitted = self.fal.submissions().len();
        let photos = self.telegram.count("sendPhoto");
        let (payload, stars) = self.checked_out(user).await;
        self.telegram.push_text(user, "en", "/imagine a lighthouse in a storm");
        eventually("the image at FAL", WAIT, || self.fal.submissions().len() > submitted).await;
        self.telegram.pay(user, "en", &payload, stars, &format!("charge-{user}"), false);
        let promotion = move_primary(&self.ha).await;
        eventually("the photo", WAIT, || self.telegram.count("sendPhoto") > photos).await;
        eventually("the credit", WAIT, || self.texts_with(user, "+250 coins") >= 1).await;
        println!(
            "pg failover figure: {what} under a FAL job and a payment: a new primary {:.1} s after it began",
            promotion.as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(self.fal.submissions().len(), submitted + 1, "{what}: the image submitted to FAL once");
        assert_eq!(self.telegram.count("sendPhoto"), photos + 1, "{what}: one photo");
        assert_eq!(self.texts_with(user, "+250 coins"), 1, "{what}: credited once");
        let credits = self
            .services
            .scalar(&format!(
                "SELECT count(*) FROM ledger_entries e JOIN users u ON u.id = e.user_id
                 WHERE e.delta = 250 AND u.telegram_id = {user}"
            ))
            .await;
        assert_eq!(credits, 1, "{what}: one ledger credit");
        self.services.assert_ledger_balanced().await;
    }

    async fn stop(mut self) {
        for daemon in &mut self.daemons {
            daemon.signal("TERM");
        }
        for daemon in &mut self.daemons {
            assert_eq!(daemon.wait(Duration::from_secs(30)).await, 0, "it stayed up and stops cleanly");
        }
    }
}

async fn kill_primary(ha: &PgHa) -> Duration {
    let old = ha.kill_primary().await;
    ha.promoted(&old, Duration::from_secs(60)).await
}

/// No promotion: the primary refuses writes for a while, as a managed
/// service does during a failover (`default_transaction_read_only`).
async fn read_only_for_a_while(ha: &PgHa) -> Duration {
    ha.on_leader("ALTER SYSTEM SET default_transaction_read_only = on").await;
    ha.on_leader("SELECT pg_reload_conf()").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    ha.on_leader("ALTER SYSTEM RESET default_transaction_read_only").await;
    ha.on_leader("SELECT pg_reload_conf()").await;
    Duration::from_secs(5)
}

async fn switchover(ha: &PgHa) -> Duration {
    ha.synchronous().await;
    let old = ha.leader().await.expect("a leader");
    let started = Instant::now();
    ha.switchover(&old).await;
    ha.promoted(&old, Duration::from_secs(60)).await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn voice_notes_through_a_killed_primary_and_a_switchover_are_answered_paid_and_charged_once() {
    let rig = Rig::start("pg_voice").await;
    let users: Vec<i64> = (8100..8130).collect();
    rig.welcome(&users).await;
    rig.voice_notes_through(&users[..15], "primary SIGKILLed", kill_primary).await;
    rig.voice_notes_through(&users[15..], "patronictl switchover", switchover).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fal_job_and_a_stars_payment_through_a_killed_primary_and_a_switchover_happen_once() {
    let rig = Rig::start("pg_fal_stars").await;
    rig.welcome(&[8201, 8202]).await;
    rig.image_and_payment_through(8201, "primary SIGKILLed", kill_primary).await;
    rig.image_and_payment_through(8202, "patronictl switchover", switchover).await;
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_turned_read_only_has_its_connections_replaced_and_fails_no_job() {
    let rig = Rig::start("pg_read_only").await;
    let users: Vec<i64> = (8300..8312).collect();
    rig.welcome(&users).await;
    rig.voice_notes_through(&users, "primary read-only for 5 s", read_only_for_a_while).await;
    let failed = rig.services.scalar("SELECT count(*) FROM jobs WHERE state = 'dead'").await;
    assert_eq!(failed, 0, "no job failed for the read-only primary");
    let mut replaced = 0.0;
    for daemon in &rig.daemons {
        let telemetry = daemon.telemetry_addr().await;
        let metrics = reqwest::get(format!("http://{telemetry}/metrics")).await.unwrap().text().await.unwrap();
        replaced += metrics
            .lines()
            .find(|l| l.starts_with("aishad_db_read_only_errors_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    }
    assert!(replaced >= 1.0, "a write refused as read-only was seen and counted");
    rig.stop().await;
}
