//! Throughput of the job queue and the poller against the real local
//! services, on PostgreSQL with fsync on. Run with `scripts/bench.sh`
//! (services up, then `cargo bench`). First pgbench's ceilings: the same
//! statements at one commit per item, on the same server.
//!
//! - queue: a backlog of no-op jobs through claim → run → done, with 1 and 2
//!   worker pools (each a separate instance, as separate processes would
//!   be); jobs/s and claim-to-done percentiles. Then jobs enqueued one per
//!   transaction at a steady pace with idle workers: enqueue-to-claim, from
//!   this process and from another one.
//! - poller: voice-message updates in batches of 100 from the fake Bot API
//!   through lease, record, dispatch, charge and enqueue; updates/s and
//!   received-to-handled latency percentiles.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_actors::jobs::{queue, Job, JobError, NewJob};
use aisha_actors::poller::TelegramPoller;
use aisha_actors::pool::{BoxFuture, JobContext, JobHandler, JobPool, JobPoolArgs};
use aisha_actors::secret::Secret;
use aisha_actors::services::Services;
use aisha_testkit::ceiling::{self, Ceiling};
use aisha_testkit::FakeTelegram;
use ractor::Actor;
use serde_json::{json, Value};

/// The daemon's allocator (see `src/main.rs`), so the actors here run as they do there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const JOBS: usize = 10_000;
const PACED: usize = 1_000;
const UPDATES: usize = 10_000;
/// Each with coins, sending UPDATES / USERS voice notes.
const USERS: i64 = 1000;
const CLIENTS: usize = 32;

struct Noop;

impl JobHandler for Noop {
    fn run(&self, _job: Job, _ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        Box::pin(async { Ok(Value::Null) })
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn millis(services: &Services, sql: &str) -> Vec<f64> {
    let client = services.db.client().await.unwrap();
    let mut v: Vec<f64> = client.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, f64>(0)).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// WAL flushes (fsyncs) of the server so far: what a durable commit costs
/// (the statistics lag by up to a second, hence the pause).
async fn wal_flushes(services: &Services) -> i64 {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let client = services.db.client().await.unwrap();
    let sql = "SELECT wal_sync FROM pg_stat_wal";
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn count(services: &Services, sql: &str) -> usize {
    services.db.client().await.unwrap().query_one(sql, &[]).await.unwrap().get::<_, i64>(0) as usize
}

/// pgbench's one-commit ceilings, on a database of their own on the same server.
async fn ceilings() -> (Ceiling, Ceiling) {
    let (test, services) = common::services("bench_ceilings", |_| {}).await;
    let client = services.db.client().await.unwrap();
    client
        .batch_execute("INSERT INTO users (telegram_id, balance) SELECT g, 1000000 FROM generate_series(1, 300) g")
        .await
        .unwrap();
    let job = ceiling::pgbench(&test.database_url, "a no-op job (enqueue, claim, done)", ceiling::JOB, CLIENTS, 10);
    let update = ceiling::pgbench(
        &test.database_url,
        "a voice update (record, claim, charge, handled)",
        ceiling::UPDATE,
        CLIENTS,
        10,
    );
    (job, update)
}

fn pool_settings(s: &mut aisha_actors::settings::Settings) {
    s.jobs.default.workers = 128;
    s.jobs.default.concurrency = 100_000;
    s.jobs.poll_interval = Duration::from_millis(500);
    s.database.pool_size = 16;
}

async fn start_pools(services: &Services, pools: usize) -> Vec<ractor::ActorRef<aisha_actors::pool::PoolMsg>> {
    let mut started = Vec::new();
    for w in 0..pools {
        let mut handlers: BTreeMap<String, Arc<dyn JobHandler>> = BTreeMap::new();
        handlers.insert("noop".into(), Arc::new(Noop));
        let args = JobPoolArgs { services: common::as_instance(services, &format!("bench-worker-{w}")), handlers };
        started.push(Actor::spawn(None, JobPool, args).await.unwrap().0);
    }
    started
}

/// A backlog of no-op jobs through claim → run → done: the queue's throughput.
async fn queue_run(pools: usize, ceiling: &Ceiling) {
    let (_test, services) = common::services(&format!("bench_queue_{pools}"), pool_settings).await;
    let enqueue_started = Instant::now();
    for chunk in 0..(JOBS / 1000) {
        let client = services.db.client().await.unwrap();
        let jobs: Vec<NewJob> =
            (0..1000).map(|i| NewJob::new("noop", format!("bench:{chunk}:{i}"), json!({}))).collect();
        queue::enqueue_new(&client, &jobs).await.unwrap();
    }
    let enqueue_rate = JOBS as f64 / enqueue_started.elapsed().as_secs_f64();
    let started = Instant::now();
    let running = start_pools(&services, pools).await;
    while count(&services, "SELECT count(*) FROM jobs WHERE state = 'done'").await < JOBS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = JOBS as f64 / started.elapsed().as_secs_f64();
    for pool in running {
        pool.stop(None);
    }
    let claim_to_finish =
        millis(&services, "SELECT extract(epoch FROM finished_at - claimed_at)::float8 * 1000 FROM jobs").await;
    println!(
        "queue  pools={pools}  {JOBS} no-op jobs: {rate:>7.0} jobs/s claimed and done ({:.2}× the ceiling)  claim→done p50 {:.2} ms p99 {:.2} ms  (enqueued {enqueue_rate:.0} jobs/s, 1000 a statement)",
        rate / ceiling.per_second,
        percentile(&claim_to_finish, 0.50),
        percentile(&claim_to_finish, 0.99),
    );
}

/// Jobs enqueued one per transaction, as producers do, at a steady pace
/// with idle workers: how long a job waits to be claimed. Twice: queued by
/// this process's `Db` (its workers hear the wake at once, as in `all`
/// mode), and by a `Db` of its own, as another process would (the workers
/// hear it through PostgreSQL's NOTIFY). Below both: one commit alone,
/// which each enqueue waits for before its wake is sent.
async fn queue_latency() {
    let (test, services) = common::services("bench_queue_latency", pool_settings).await;
    let alone = ceiling::pgbench(&test.database_url, "one small commit", ceiling::COMMIT, 1, 5);
    println!("{alone}");
    let running = start_pools(&services, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // LISTEN established
    let elsewhere = aisha_actors::store::Db::new(&services.settings.database).unwrap();
    for (label, producer) in [("this process", services.db.clone()), ("another process", elsewhere)] {
        let started = Instant::now();
        for i in 0..PACED {
            let client = producer.client().await.unwrap();
            queue::enqueue(&client, &NewJob::new("noop", format!("paced:{label}:{i}"), json!({}))).await.unwrap();
            drop(client);
            producer.wake("noop");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let pattern = format!("paced:{label}:%");
        let done = format!("SELECT count(*) FROM jobs WHERE state = 'done' AND idempotency_key LIKE '{pattern}'");
        while count(&services, &done).await < PACED {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pace = PACED as f64 / started.elapsed().as_secs_f64();
        let waited = millis(
            &services,
            &format!("SELECT extract(epoch FROM claimed_at - created_at)::float8 * 1000 FROM jobs WHERE idempotency_key LIKE '{pattern}'"),
        )
        .await;
        println!(
            "queue  {PACED} jobs enqueued one per transaction by {label:<15} ({pace:.0}/s), idle workers: enqueue→claim p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms",
            percentile(&waited, 0.50),
            percentile(&waited, 0.90),
            percentile(&waited, 0.99),
        );
    }
    for pool in running {
        pool.stop(None);
    }
}

async fn poller_run(ceiling: &Ceiling) {
    const TOKEN: &str = "777:BENCH-token-abcdefgh";
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (_test, services) = common::services("bench_poller", |s| {
        s.telegram.token = Secret::new(TOKEN);
        s.telegram.api_url = url;
        s.telegram.poll_timeout = Duration::from_secs(1);
        s.poller.batch = 100;
        s.database.pool_size = 32;
        // The fake answers at once; Telegram's flood limits are not what is measured here.
        s.telegram.send_per_second = 1_000_000;
        s.telegram.send_per_chat_second = 1_000_000;
        // Ten notes each from a thousand users at once, with no worker running: past the per-user caps.
        s.limits.jobs_in_flight = 1_000;
        s.limits.paid_per_minute = 1_000;
    })
    .await;
    // The users and their coins in one statement (balance = the sum of their entries).
    let client = services.db.client().await.unwrap();
    client
        .execute(
            "WITH u AS (INSERT INTO users (telegram_id, language_code, balance)
                        SELECT 50000 + g, 'en', 1000 FROM generate_series(0, $1::bigint - 1) g RETURNING id)
             INSERT INTO ledger_entries (user_id, delta, reason) SELECT id, 1000, 'welcome_bonus' FROM u",
            &[&USERS],
        )
        .await
        .unwrap();
    drop(client);
    for i in 0..UPDATES {
        telegram.push_voice(50_000 + (i as i64 % USERS), "en", 30, bytes::Bytes::from_static(b"OggS"));
    }
    let flushes_before = wal_flushes(&services).await;
    let cpu_before = aisha_testkit::cpu_seconds(std::process::id());
    let started = Instant::now();
    let (poller, _) = Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    // Watched from the fake's side first: polling the tables would load the server being measured.
    while telegram.count("sendMessage") < UPDATES {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    loop {
        let client = services.db.client().await.unwrap();
        let jobs: i64 = client.query_one("SELECT count(*) FROM jobs", &[]).await.unwrap().get(0);
        let handled: i64 = client
            .query_one("SELECT count(*) FROM telegram_updates WHERE handled_at IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        if handled as usize == UPDATES && jobs as usize == UPDATES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let cpu_after = aisha_testkit::cpu_seconds(std::process::id());
    let flushes = wal_flushes(&services).await - flushes_before;
    poller.stop(None);
    let latency =
        millis(&services, "SELECT extract(epoch FROM handled_at - received_at)::float8 * 1000 FROM telegram_updates")
            .await;
    common::assert_ledger(&services).await;
    let rate = UPDATES as f64 / elapsed.as_secs_f64();
    let per_update_ms = |seconds: f64| seconds * 1000.0 / UPDATES as f64;
    println!(
        "poller {UPDATES} voice updates from {USERS} users (recorded, charged, queued, answered; batches of 100): {rate:>6.0} updates/s ({:.2}× the ceiling)  received→handled p50 {:.1} ms p99 {:.1} ms  ({} Bot API calls, {:.2} WAL flushes an update; CPU an update: {:.2} ms this process with the fake Bot API, {:.2} ms PostgreSQL)",
        rate / ceiling.per_second,
        percentile(&latency, 0.50),
        percentile(&latency, 0.99),
        telegram.all_calls().len(),
        flushes as f64 / UPDATES as f64,
        per_update_ms(cpu_after.0 - cpu_before.0),
        per_update_ms(cpu_after.1 - cpu_before.1),
    );
}

/// `cargo bench --bench throughput -- poller` runs only the poller (or `queue`).
fn wanted(part: &str) -> bool {
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    named.is_empty() || named.iter().any(|n| n == part)
}

fn main() {
    aisha_testkit::bench_main(|| async {
        let (job, update) = ceilings().await;
        if wanted("queue") {
            println!("{job}");
            for pools in [1, 2] {
                queue_run(pools, &job).await;
            }
            queue_latency().await;
        }
        if wanted("poller") {
            println!("{update}");
            poller_run(&update).await;
        }
    });
}
