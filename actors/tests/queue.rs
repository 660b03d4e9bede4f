//! The durable queue and the worker pool against real PostgreSQL, with real
//! ractor actors: claims never overlap, a lost worker's job runs again and
//! finishes once, failures back off, the pool is woken by NOTIFY.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisha_actors::jobs::queue::{self, Enqueued, Failed};
use aisha_actors::jobs::{Job, JobError, JobState, NewJob};
use aisha_actors::ledger;
use aisha_actors::pool::{BoxFuture, DeadReason, JobContext, JobHandler, JobPool, JobPoolArgs, PoolMsg};
use aisha_actors::services::Services;
use aisha_actors::store::Db;
use aisha_testkit::{eventually, eventually_async};
use ractor::{Actor, ActorRef};
use serde_json::{json, Value};

const LEASE: Duration = Duration::from_secs(30);

/// Enqueued and committed, then the workers woken, as every producer does.
async fn enqueue(services: &Services, kind: &str, key: &str) -> Job {
    let client = services.db.client().await.unwrap();
    let job = queue::enqueue(&client, &NewJob::new(kind, key, json!({ "key": key }))).await.unwrap().job().clone();
    services.db.wake(kind);
    job
}

#[tokio::test]
async fn enqueue_is_idempotent_on_its_key() {
    let (_t, services) = common::services("enqueue_idem", |_| {}).await;
    let client = services.db.client().await.unwrap();
    let new = NewJob::new("noop", "update:1", json!({}));
    let Enqueued::Created(first) = queue::enqueue(&client, &new).await.unwrap() else { panic!() };
    assert_eq!(queue::enqueue(&client, &new).await.unwrap(), Enqueued::Existing(first));
}

#[tokio::test]
async fn concurrent_claims_never_hand_out_a_job_twice() {
    let (_t, services) = common::services("claim_disjoint", |_| {}).await;
    for i in 0..40 {
        enqueue(&services, "noop", &format!("j{i}")).await;
    }
    let claimers: Vec<_> = (0..4)
        .map(|w| {
            let db = services.db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let jobs = queue::claim(&db, "noop", 3, 100, &format!("w{w}"), LEASE).await.unwrap();
                    if jobs.is_empty() {
                        return mine;
                    }
                    mine.extend(jobs.into_iter().map(|j| j.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 40);
    assert_eq!(unique.len(), 40, "no job claimed twice");
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_again_and_the_old_worker_cannot_finish_it() {
    let (_t, services) = common::services("lease_lapse", |_| {}).await;
    let job = enqueue(&services, "noop", "lapse").await;
    let first = queue::claim(&services.db, "noop", 1, 10, "old", Duration::from_millis(300)).await.unwrap();
    assert_eq!(first[0].id, job.id);
    assert!(queue::claim(&services.db, "noop", 1, 10, "new", LEASE).await.unwrap().is_empty(), "leased");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = queue::claim(&services.db, "noop", 1, 10, "new", LEASE).await.unwrap();
    assert_eq!(second[0].id, job.id);
    assert_eq!(second[0].attempts, 2);
    assert!(!queue::complete(&services.db, job.id, "old", &json!(null)).await.unwrap(), "old worker lost it");
    assert!(queue::heartbeat(&services.db, &[job.id], "old", LEASE).await.unwrap().is_empty());
    assert!(queue::complete(&services.db, job.id, "new", &json!("ok")).await.unwrap());
}

#[tokio::test]
async fn failures_back_off_then_the_job_dies_after_max_attempts() {
    let (_t, services) = common::services("backoff_dead", |_| {}).await;
    let client = services.db.client().await.unwrap();
    let new = NewJob { max_attempts: 2, ..NewJob::new("noop", "flaky", json!({})) };
    let job = queue::enqueue(&client, &new).await.unwrap().job().clone();

    queue::claim(&services.db, "noop", 1, 10, "w", LEASE).await.unwrap();
    let failed = ledger::fail_job(&services.db, job.id, "w", "502 from upstream", Some(Duration::from_millis(500)))
        .await
        .unwrap();
    assert_eq!(failed, Failed::Retrying { delay: Duration::from_millis(500) });
    assert!(queue::claim(&services.db, "noop", 1, 10, "w", LEASE).await.unwrap().is_empty(), "not before the backoff");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(queue::claim(&services.db, "noop", 1, 10, "w", LEASE).await.unwrap().len(), 1);
    let Failed::Dead(dead) =
        ledger::fail_job(&services.db, job.id, "w", "502 again", Some(Duration::ZERO)).await.unwrap()
    else {
        panic!("second failure of two attempts is final")
    };
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("502 again"));
}

#[tokio::test]
async fn the_per_kind_concurrency_limit_holds_across_workers() {
    let (_t, services) = common::services("concurrency", |_| {}).await;
    for i in 0..10 {
        enqueue(&services, "limited", &format!("l{i}")).await;
    }
    let a = queue::claim(&services.db, "limited", 10, 3, "a", LEASE).await.unwrap();
    let b = queue::claim(&services.db, "limited", 10, 3, "b", LEASE).await.unwrap();
    assert_eq!((a.len(), b.len()), (3, 0));
    queue::complete(&services.db, a[0].id, "a", &json!(null)).await.unwrap();
    assert_eq!(queue::claim(&services.db, "limited", 10, 3, "b", LEASE).await.unwrap().len(), 1);
}

#[tokio::test]
async fn claims_racing_each_other_stay_within_the_concurrency_limit() {
    let (_t, services) = common::services("concurrency_race", |s| s.database.pool_size = 16).await;
    for i in 0..40 {
        enqueue(&services, "limited", &format!("r{i}")).await;
    }
    for round in 0..5 {
        let claims = (0..12).map(|w| {
            let db = services.db.clone();
            tokio::spawn(
                async move { queue::claim(&db, "limited", 2, 3, &format!("w{round}-{w}"), LEASE).await.unwrap() },
            )
        });
        let claimed: Vec<Job> = futures::future::join_all(claims).await.into_iter().flat_map(|c| c.unwrap()).collect();
        assert_eq!(
            claimed.len(),
            3,
            "round {round}: twelve claims at once take what the limit of three allows, no more"
        );
        for job in &claimed {
            queue::complete(&services.db, job.id, job.locked_by.as_deref().unwrap(), &json!(null)).await.unwrap();
        }
    }
}

/// A handler whose behaviour each test picks.
#[derive(Clone, Default)]
struct TestHandler {
    runs: Arc<AtomicUsize>,
    finished: Arc<Mutex<Vec<i64>>>,
    dead: Arc<Mutex<Vec<i64>>>,
    /// Panic on the first run of each job.
    panic_first: bool,
    /// Block until cancelled (a worker that hangs).
    hang: bool,
    delay: Duration,
    fail_with: Option<JobError>,
}

impl JobHandler for TestHandler {
    fn run(&self, job: Job, mut ctx: JobContext) -> BoxFuture<Result<Value, JobError>> {
        let this = self.clone();
        Box::pin(async move {
            let run = this.runs.fetch_add(1, Ordering::SeqCst);
            if this.panic_first && job.attempts == 1 {
                panic!("handler crashed on attempt {}", job.attempts);
            }
            if this.hang {
                let _ = ctx.cancelled.wait_for(|c| *c).await;
                return Err(JobError::Retry("cancelled".into()));
            }
            tokio::time::sleep(this.delay).await;
            if let Some(error) = this.fail_with.clone() {
                return Err(error);
            }
            this.finished.lock().unwrap().push(job.id);
            Ok(json!({ "run": run }))
        })
    }

    fn on_dead(&self, job: Job, _reason: DeadReason) -> BoxFuture<()> {
        let dead = self.dead.clone();
        Box::pin(async move { dead.lock().unwrap().push(job.id) })
    }
}

async fn pool(services: &Services, handler: &TestHandler) -> ActorRef<PoolMsg> {
    let mut handlers: BTreeMap<String, Arc<dyn JobHandler>> = BTreeMap::new();
    handlers.insert("noop".into(), Arc::new(handler.clone()));
    let (pool, _) = Actor::spawn(None, JobPool, JobPoolArgs { services: services.clone(), handlers }).await.unwrap();
    pool
}

async fn state_of(services: &Services, id: i64) -> Job {
    queue::get(&services.db, id).await.unwrap().unwrap()
}

#[tokio::test]
async fn many_jobs_are_enqueued_in_one_statement_once_each() {
    let (_t, services) = common::services("enqueue_many", |_| {}).await;
    let client = services.db.client().await.unwrap();
    let jobs: Vec<NewJob> = (0..5).map(|i| NewJob::new("noop", format!("many:{i}"), json!({ "i": i }))).collect();
    assert_eq!(queue::enqueue_new(&client, &jobs).await.unwrap().len(), 5);
    assert_eq!(queue::enqueue_new(&client, &jobs).await.unwrap().len(), 0, "existing keys add nothing");
    let payloads: Vec<Value> =
        client.query("SELECT payload FROM jobs ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(payloads[4], json!({ "i": 4 }));
}

#[tokio::test]
async fn finished_jobs_are_marked_done_together_and_a_lost_one_only_for_itself() {
    let (_t, services) = common::services("complete_many", |_| {}).await;
    for i in 0..3 {
        enqueue(&services, "noop", &format!("c{i}")).await;
    }
    let claimed = queue::claim(&services.db, "noop", 3, 10, "w#1", LEASE).await.unwrap();
    let mut done: Vec<queue::Completion> = claimed
        .iter()
        .map(|j| queue::Completion { id: j.id, worker: "w#1".into(), result: json!({ "ok": j.id }) })
        .collect();
    done[1].worker = "someone-else#2".into();
    let marked: Vec<bool> = queue::complete_many(&services.db, done).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(marked, [true, false, true], "only the holder may finish a job");
    assert_eq!(state_of(&services, claimed[1].id).await.state, JobState::Running);
    assert_eq!(state_of(&services, claimed[2].id).await.state, JobState::Done);
}

#[tokio::test]
async fn the_pool_is_woken_by_notify_not_the_slow_poll() {
    let (_t, services) = common::services("pool_notify", |s| s.jobs.poll_interval = Duration::from_secs(3600)).await;
    let handler = TestHandler::default();
    let pool = pool(&services, &handler).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // LISTEN established
                                                          // Queued by another process: its own Db, so the pool hears of it only through NOTIFY.
    let elsewhere = Services { db: Db::new(&services.settings.database).unwrap(), ..services.clone() };
    let job = enqueue(&elsewhere, "noop", "wake").await;
    eventually("job done", Duration::from_secs(5), || handler.finished.lock().unwrap().contains(&job.id)).await;
    let done = state_of(&services, job.id).await;
    assert_eq!(done.state, JobState::Done);
    pool.stop(None);
}

#[tokio::test]
async fn the_pool_is_woken_at_once_by_its_own_process() {
    let (_t, services) =
        common::services("pool_local_wake", |s| s.jobs.poll_interval = Duration::from_secs(3600)).await;
    let handler = TestHandler::default();
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "local").await;
    eventually("job done", Duration::from_secs(5), || handler.finished.lock().unwrap().contains(&job.id)).await;
    pool.stop(None);
}

/// The echo of a process's own wakeup is recognised by the backend that sent
/// it, and another process's is not mistaken for it.
#[tokio::test]
async fn own_notifications_are_told_apart_from_another_process() {
    let (_t, services) = common::services("own_notify", |_| {}).await;
    let (listener, mut connection) =
        tokio_postgres::connect(services.settings.database.url.expose(), tokio_postgres::NoTls).await.unwrap();
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = futures::StreamExt::next(&mut messages).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.process_id(), n.payload().to_owned()));
            }
        }
    });
    listener.batch_execute(&format!("LISTEN {}", queue::CHANNEL)).await.unwrap();
    let elsewhere = Db::new(&services.settings.database).unwrap();
    for (db, kind) in [(&services.db, "here"), (&elsewhere, "elsewhere")] {
        db.wake(kind);
        let (sender, payload) = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await.unwrap().unwrap();
        assert_eq!(payload, kind);
        assert_eq!(services.db.sent_here(sender), kind == "here", "{kind}: recognised as this process's own");
        assert_eq!(elsewhere.sent_here(sender), kind == "elsewhere", "{kind}: recognised by the other");
    }
    assert!(!services.db.sent_here(0), "0 is no backend");
}

#[tokio::test]
async fn a_crashing_job_actor_is_retried_and_finishes_once() {
    let (_t, services) = common::services("pool_crash", |s| {
        s.jobs.retry_min = Duration::from_millis(50);
        s.jobs.retry_max = Duration::from_millis(100);
        s.jobs.poll_interval = Duration::from_millis(100);
    })
    .await;
    let handler = TestHandler { panic_first: true, ..Default::default() };
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "crash").await;
    eventually("finished after the crash", Duration::from_secs(10), || !handler.finished.lock().unwrap().is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let done = state_of(&services, job.id).await;
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert_eq!(handler.finished.lock().unwrap().len(), 1);
    pool.stop(None);
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_it_to_another_which_finishes_it_once() {
    let (_t, services) = common::services("pool_killed", |s| {
        s.jobs.lease = Duration::from_millis(600);
        s.jobs.poll_interval = Duration::from_millis(100);
    })
    .await;
    let stuck = TestHandler { hang: true, ..Default::default() };
    let worker_a = pool(&common::as_instance(&services, "worker-a"), &stuck).await;
    let job = enqueue(&services, "noop", "killed").await;
    eventually("worker A runs it", Duration::from_secs(5), || stuck.runs.load(Ordering::SeqCst) == 1).await;
    worker_a.kill(); // no drain, no release: only the lease's lapse frees the job

    let healthy = TestHandler::default();
    let worker_b = pool(&common::as_instance(&services, "worker-b"), &healthy).await;
    eventually("worker B finishes it", Duration::from_secs(10), || healthy.finished.lock().unwrap().contains(&job.id))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = state_of(&services, job.id).await;
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    assert!(stuck.finished.lock().unwrap().is_empty());
    assert_eq!(healthy.finished.lock().unwrap().len(), 1, "finished once");
    worker_b.stop(None);
}

#[tokio::test]
async fn a_permanent_error_kills_the_job_at_once_and_tells_the_handler() {
    let (_t, services) =
        common::services("pool_permanent", |s| s.jobs.poll_interval = Duration::from_millis(100)).await;
    let handler = TestHandler { fail_with: Some(JobError::Refused("file too big".into())), ..Default::default() };
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "permanent").await;
    eventually("dead", Duration::from_secs(5), || handler.dead.lock().unwrap().contains(&job.id)).await;
    let dead = state_of(&services, job.id).await;
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 1));
    pool.stop(None);
}

#[tokio::test]
async fn stopping_the_pool_lets_in_flight_jobs_finish() {
    let (_t, services) = common::services("pool_drain", |s| s.jobs.poll_interval = Duration::from_millis(100)).await;
    let handler = TestHandler { delay: Duration::from_millis(500), ..Default::default() };
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "drain").await;
    eventually("started", Duration::from_secs(5), || handler.runs.load(Ordering::SeqCst) == 1).await;
    pool.stop_and_wait(None, Some(Duration::from_secs(5))).await.unwrap();
    assert_eq!(state_of(&services, job.id).await.state, JobState::Done, "drained, not abandoned");
}

#[tokio::test]
async fn a_stopping_pool_keeps_its_jobs_from_its_next_incarnation() {
    // A rolling update starts the next incarnation of an instance before the
    // last one stops: the jobs the stopping one still runs stay its own.
    let (_t, services) = common::services("pool_next_incarnation", |s| {
        s.jobs.lease = Duration::from_millis(600);
        s.jobs.poll_interval = Duration::from_millis(100);
    })
    .await;
    let same = common::as_instance(&services, "worker-1");
    let stopping = TestHandler { delay: Duration::from_millis(2000), ..Default::default() };
    let old = pool(&same, &stopping).await;
    let job = enqueue(&services, "noop", "rolling").await;
    eventually("the old one runs it", Duration::from_secs(5), || stopping.runs.load(Ordering::SeqCst) == 1).await;
    old.stop(None);
    let next = TestHandler::default();
    let new = pool(&same, &next).await;
    eventually("finished", Duration::from_secs(10), || stopping.finished.lock().unwrap().contains(&job.id)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(next.runs.load(Ordering::SeqCst), 0, "the next incarnation never ran it");
    let done = state_of(&services, job.id).await;
    assert_eq!((done.state, done.attempts), (JobState::Done, 1));
    new.stop(None);
}

/// A lease of a minute and no slow poll: a job left held waits out the test.
fn claims_only_when_woken(s: &mut aisha_actors::settings::Settings) {
    s.jobs.lease = Duration::from_secs(60);
    s.jobs.poll_interval = Duration::from_secs(3600);
}

/// Once the pool's one runner has started: the claim lock of `noop` taken
/// here and the pool woken, so it waits in a claim, hearing of nothing else
/// (a runner's end included), until the returned session commits.
async fn pool_waiting_in_a_claim(services: &Services, handler: &TestHandler) -> deadpool_postgres::Object {
    eventually("running", Duration::from_secs(5), || handler.runs.load(Ordering::SeqCst) == 1).await;
    let holder = services.db.client().await.unwrap();
    let lock = format!("BEGIN; SELECT pg_advisory_xact_lock({}, hashtext('noop'))", queue::CLAIM_LOCK_NAMESPACE);
    holder.batch_execute(&lock).await.unwrap();
    services.db.wake("noop");
    let client = services.db.client().await.unwrap();
    let waiting = "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                   WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()";
    eventually_async("the pool waits in its claim", Duration::from_secs(5), || async {
        client.query_one(waiting, &[]).await.unwrap().get::<_, i64>(0) == 1
    })
    .await;
    holder
}

/// Its runner ended it and it was queued again before the pool heard of that
/// end: it runs at once, not when its lease lapses (a minute here).
#[tokio::test]
async fn a_job_queued_again_as_its_runner_ends_runs_at_once() {
    let (_t, services) = common::services("pool_queued_again", claims_only_when_woken).await;
    let handler = TestHandler { delay: Duration::from_millis(1000), ..Default::default() };
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "again").await;
    let holder = pool_waiting_in_a_claim(&services, &handler).await;
    eventually("ended", Duration::from_secs(5), || handler.finished.lock().unwrap().len() == 1).await;
    let client = services.db.client().await.unwrap();
    eventually_async("marked done", Duration::from_secs(5), || async {
        client.query_one("SELECT state = 'done' FROM jobs", &[]).await.unwrap().get::<_, bool>(0)
    })
    .await;
    // Due before the waiting claim began: its now() is its transaction's start.
    client
        .execute(
            "UPDATE jobs SET state = 'queued', locked_by = NULL, locked_until = NULL, run_at = now() - interval '1 minute'",
            &[],
        )
        .await
        .unwrap();
    holder.batch_execute("COMMIT").await.unwrap();
    eventually("run again", Duration::from_secs(10), || handler.finished.lock().unwrap().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = state_of(&services, job.id).await;
    assert_eq!((done.state, done.attempts), (JobState::Done, 2));
    pool.stop(None);
}

/// Its lease lapsed while its runner worked (the database away longer than a
/// lease) and the same pool claimed it again: the runner in hand finishes it,
/// and no second runner starts.
#[tokio::test]
async fn a_job_whose_lease_lapsed_under_its_runner_runs_once() {
    let (_t, services) = common::services("pool_lapsed_under", claims_only_when_woken).await;
    let handler = TestHandler { delay: Duration::from_millis(1500), ..Default::default() };
    let pool = pool(&services, &handler).await;
    let job = enqueue(&services, "noop", "lapsed").await;
    let holder = pool_waiting_in_a_claim(&services, &handler).await;
    let client = services.db.client().await.unwrap();
    client.execute("UPDATE jobs SET locked_until = now() - interval '1 minute'", &[]).await.unwrap();
    holder.batch_execute("COMMIT").await.unwrap();
    eventually("finished", Duration::from_secs(10), || handler.finished.lock().unwrap().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handler.runs.load(Ordering::SeqCst), 1, "one runner");
    let done = state_of(&services, job.id).await;
    assert_eq!((done.state, done.attempts), (JobState::Done, 2), "claimed twice, run and finished once");
    pool.stop(None);
}

#[tokio::test]
async fn the_depth_says_how_long_the_oldest_due_job_has_waited() {
    let (_t, services) = common::services("depth_oldest", |_| {}).await;
    enqueue(&services, "noop", "waiting").await;
    let client = services.db.client().await.unwrap();
    // A job waiting out a retry's backoff is not late: it is not due.
    let later = NewJob { delay: Duration::from_secs(3600), ..NewJob::new("noop", "later", json!({})) };
    queue::enqueue(&client, &later).await.unwrap();
    client
        .execute("UPDATE jobs SET created_at = now() - interval '90 seconds' WHERE idempotency_key = 'waiting'", &[])
        .await
        .unwrap();
    client
        .execute("UPDATE jobs SET created_at = now() - interval '2 hours' WHERE idempotency_key = 'later'", &[])
        .await
        .unwrap();
    let depth = queue::depth(&services.db).await.unwrap();
    let queued = depth.iter().find(|d| d.kind == "noop" && d.state == aisha_actors::jobs::JobState::Queued).unwrap();
    assert_eq!(queued.count, 2);
    assert!((90.0..120.0).contains(&queued.oldest_seconds), "{}", queued.oldest_seconds);
}
