//! Throughput of the job queue and the poller against the real local
//! services. Run with `scripts/bench.sh` (services up, then `cargo bench`).
//!
//! - queue: N no-op jobs through enqueue → claim → complete, with 1, 2 and 4
//!   worker pools (each a separate instance, as separate processes would be);
//!   jobs/s and claim-to-finish / enqueue-to-finish latency percentiles.
//! - poller: voice-message updates in batches of 100 from the fake Bot API
//!   through lease, record, dispatch, charge and enqueue; updates/s and
//!   received-to-handled latency percentiles.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisha_actors::jobs::{queue, Job, JobError, NewJob};
use aisha_actors::pool::{BoxFuture, JobContext, JobHandler, JobPool, JobPoolArgs};
use aisha_actors::poller::TelegramPoller;
use aisha_actors::secret::Secret;
use aisha_actors::services::Services;
use aisha_testkit::FakeTelegram;
use ractor::Actor;
use serde_json::{json, Value};

const JOBS: usize = 3000;
const UPDATES: usize = 3000;

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

async fn queue_run(workers: usize) {
    let (_test, services) = common::services(&format!("bench_queue_{workers}"), |s| {
        s.jobs.default.workers = 16;
        s.jobs.default.concurrency = 1000;
        s.jobs.poll_interval = Duration::from_millis(200);
        s.database.pool_size = 8;
    })
    .await;

    let enqueue_started = Instant::now();
    for chunk in 0..(JOBS / 100) {
        let mut client = services.db.client().await.unwrap();
        let tx = client.transaction().await.unwrap();
        for i in 0..100 {
            let key = format!("bench:{chunk}:{i}");
            queue::enqueue(&*tx, &NewJob::new("noop", key, json!({}))).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let enqueue_rate = JOBS as f64 / enqueue_started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut pools = Vec::new();
    for w in 0..workers {
        let mut handlers: BTreeMap<String, Arc<dyn JobHandler>> = BTreeMap::new();
        handlers.insert("noop".into(), Arc::new(Noop));
        let args = JobPoolArgs { services: common::as_instance(&services, &format!("bench-worker-{w}")), handlers };
        pools.push(Actor::spawn(None, JobPool, args).await.unwrap().0);
    }
    loop {
        let client = services.db.client().await.unwrap();
        let done: i64 = client.query_one("SELECT count(*) FROM jobs WHERE state = 'done'", &[]).await.unwrap().get(0);
        if done as usize == JOBS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    for pool in pools {
        pool.stop(None);
    }
    let claim_to_finish =
        millis(&services, "SELECT extract(epoch FROM finished_at - claimed_at)::float8 * 1000 FROM jobs").await;
    println!(
        "queue  workers={workers}  jobs={JOBS}  {:>7.0} jobs/s  claim→finish p50 {:.2} ms p99 {:.2} ms  (enqueue {:.0} jobs/s in batches of 100)",
        JOBS as f64 / elapsed.as_secs_f64(),
        percentile(&claim_to_finish, 0.50),
        percentile(&claim_to_finish, 0.99),
        enqueue_rate,
    );
}

async fn poller_run() {
    const TOKEN: &str = "777:BENCH-token-abcdefgh";
    let telegram = FakeTelegram::start(TOKEN).await;
    let url = telegram.url();
    let (_test, services) = common::services("bench_poller", |s| {
        s.telegram.token = Secret::new(TOKEN);
        s.telegram.api_url = url;
        s.telegram.poll_timeout = Duration::from_secs(1);
        s.poller.batch = 100;
        s.database.pool_size = 32;
    })
    .await;
    // 300 users with coins, ten voice notes each.
    let users = 300;
    for u in 0..users {
        let id = common::user(&services, 50_000 + u).await;
        aisha_actors::ledger::welcome_bonus(&services.db, id, 1000).await.unwrap();
    }
    for i in 0..UPDATES {
        telegram.push_voice(50_000 + (i as i64 % users), "en", 30, bytes::Bytes::from_static(b"OggS"));
    }
    let started = Instant::now();
    let (poller, _) = Actor::spawn(None, TelegramPoller, services.clone()).await.unwrap();
    loop {
        let client = services.db.client().await.unwrap();
        let jobs: i64 = client.query_one("SELECT count(*) FROM jobs", &[]).await.unwrap().get(0);
        let handled: i64 =
            client.query_one("SELECT count(*) FROM telegram_updates WHERE handled_at IS NOT NULL", &[]).await.unwrap().get(0);
        if handled as usize == UPDATES && jobs as usize == UPDATES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    poller.stop(None);
    let latency =
        millis(&services, "SELECT extract(epoch FROM handled_at - received_at)::float8 * 1000 FROM telegram_updates").await;
    println!(
        "poller updates={UPDATES} (voice, charged+queued, batches of 100)  {:>6.0} updates/s  received→handled p50 {:.1} ms p99 {:.1} ms  ({} Bot API calls)",
        UPDATES as f64 / elapsed.as_secs_f64(),
        percentile(&latency, 0.50),
        percentile(&latency, 0.99),
        telegram.all_calls().len(),
    );
}

fn main() {
    aisha_testkit::bench_main(|| async {
        for workers in [1, 2, 4] {
            queue_run(workers).await;
        }
        poller_run().await;
    });
}
