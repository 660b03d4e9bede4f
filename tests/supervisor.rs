//! The root supervisor with real ractor actors: one behaviour per test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aisha_actors::backoff::Backoff;
use aishad::health::Health;
use aishad::supervisor::{ChildSpec, Outcome, Policy, Restart, RootSupervisor, SupervisorArgs, SupervisorMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// A child that records its starts, panics on `Crash`, stops on `Finish`,
/// and can be told to fail every start or to take its time stopping.
#[derive(Clone, Default)]
struct Probe {
    starts: Arc<AtomicUsize>,
    start_times: Arc<Mutex<Vec<Instant>>>,
    fail_start: bool,
    stop_delay: Duration,
    stopped: Arc<Mutex<Vec<&'static str>>>,
    name: &'static str,
}

enum ProbeMsg {
    Crash,
    Finish,
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<ProbeMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        self.start_times.lock().unwrap().push(Instant::now());
        if self.fail_start {
            return Err("cannot start".into());
        }
        Ok(())
    }

    async fn handle(&self, me: ActorRef<ProbeMsg>, msg: ProbeMsg, _: &mut ()) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Crash => panic!("probe told to crash"),
            ProbeMsg::Finish => me.stop(None),
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<ProbeMsg>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        // Stands for in-flight work finishing.
        tokio::time::sleep(self.stop_delay).await;
        self.stopped.lock().unwrap().push(self.name);
        Ok(())
    }
}

fn policy(max_restarts: u32) -> Policy {
    Policy {
        max_restarts,
        period: Duration::from_secs(60),
        backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
        shutdown_grace: Duration::from_secs(5),
    }
}

fn spec(probe: &Probe, restart: Restart) -> ChildSpec {
    let probe = probe.clone();
    ChildSpec::new(probe.name, restart, move || (probe.clone(), ()))
}

struct Tree {
    supervisor: ActorRef<SupervisorMsg>,
    join: tokio::task::JoinHandle<()>,
    health: Arc<Health>,
    outcome: Arc<OnceLock<Outcome>>,
}

async fn start(children: Vec<ChildSpec>, policy: Policy) -> Tree {
    let health = Arc::new(Health::default());
    let outcome = Arc::new(OnceLock::new());
    let args = SupervisorArgs { children, policy, health: health.clone(), outcome: outcome.clone() };
    let (supervisor, join) = Actor::spawn(None, RootSupervisor, args).await.expect("supervisor starts");
    Tree { supervisor, join, health, outcome }
}

/// The one live child's ref: ractor lists a supervisor's children.
fn child(tree: &Tree) -> ActorRef<ProbeMsg> {
    let children = tree.supervisor.get_children();
    assert_eq!(children.len(), 1, "one live child");
    children[0].clone().into()
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_child_that_panics_is_restarted_after_backoff() {
    let probe = Probe { name: "probe", ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Permanent)], policy(5)).await;
    assert_eq!(probe.starts.load(Ordering::SeqCst), 1);

    child(&tree).cast(ProbeMsg::Crash).unwrap();
    eventually("restart", || probe.starts.load(Ordering::SeqCst) == 2).await;

    let times = probe.start_times.lock().unwrap().clone();
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(25), "restart waited for the backoff (half of 50 ms at least), took {gap:?}");
    eventually("health shows it up again", || tree.health.all_running()).await;
    assert_eq!(tree.health.children()["probe"].restarts, 1);
    assert!(tree.outcome.get().is_none(), "the tree keeps running");
    tree.supervisor.stop(None);
}

#[tokio::test]
async fn backoff_grows_between_consecutive_failures() {
    let probe = Probe { name: "flaky", fail_start: true, ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Permanent)], policy(4)).await;
    let _ = tree.join.await;
    let times = probe.start_times.lock().unwrap().clone();
    assert_eq!(times.len(), 5, "the first start and four restarts");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // ceilings 50, 100, 200, 400 ms; each delay is at least half its ceiling
    for (i, gap) in gaps.iter().enumerate() {
        let floor = Duration::from_millis(25 << i);
        assert!(*gap >= floor, "gap {i} was {gap:?}, expected at least {floor:?}");
    }
}

#[tokio::test]
async fn a_child_that_keeps_crashing_stops_the_tree_with_exit_70() {
    let probe = Probe { name: "doomed", fail_start: true, ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Permanent)], policy(3)).await;
    tokio::time::timeout(Duration::from_secs(5), tree.join).await.expect("tree stops").unwrap();
    assert_eq!(tree.outcome.get(), Some(&Outcome::RestartIntensityExceeded { child: "doomed" }));
    assert_eq!(tree.outcome.get().unwrap().exit_code(), 70);
    assert_eq!(probe.starts.load(Ordering::SeqCst), 4, "three restarts allowed, the fourth failure gives up");
}

#[tokio::test]
async fn giving_up_stops_the_healthy_siblings_too() {
    let healthy = Probe { name: "healthy", ..Default::default() };
    let doomed = Probe { name: "doomed", fail_start: true, ..Default::default() };
    let tree = start(vec![spec(&healthy, Restart::Permanent), spec(&doomed, Restart::Permanent)], policy(2)).await;
    tokio::time::timeout(Duration::from_secs(5), tree.join).await.expect("tree stops").unwrap();
    assert_eq!(*healthy.stopped.lock().unwrap(), vec!["healthy"]);
}

#[tokio::test]
async fn a_permanent_child_that_stops_cleanly_is_restarted() {
    let probe = Probe { name: "permanent", ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Permanent)], policy(5)).await;
    child(&tree).cast(ProbeMsg::Finish).unwrap();
    eventually("restart", || probe.starts.load(Ordering::SeqCst) == 2).await;
    tree.supervisor.stop(None);
}

#[tokio::test]
async fn a_transient_child_that_stops_cleanly_stays_stopped() {
    let probe = Probe { name: "transient", ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Transient)], policy(5)).await;
    child(&tree).cast(ProbeMsg::Finish).unwrap();
    eventually("stopped", || !probe.stopped.lock().unwrap().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(probe.starts.load(Ordering::SeqCst), 1);
    assert!(tree.outcome.get().is_none());
    tree.supervisor.stop(None);
}

#[tokio::test]
async fn a_transient_child_that_fails_is_restarted() {
    let probe = Probe { name: "transient", ..Default::default() };
    let tree = start(vec![spec(&probe, Restart::Transient)], policy(5)).await;
    child(&tree).cast(ProbeMsg::Crash).unwrap();
    eventually("restart", || probe.starts.load(Ordering::SeqCst) == 2).await;
    tree.supervisor.stop(None);
}

#[tokio::test]
async fn shutdown_stops_children_in_reverse_order_after_in_flight_work() {
    let stopped = Arc::new(Mutex::new(Vec::new()));
    let worker = Probe {
        name: "worker",
        stop_delay: Duration::from_millis(300),
        stopped: stopped.clone(),
        ..Default::default()
    };
    let intake = Probe { name: "intake", stopped: stopped.clone(), ..Default::default() };
    let tree = start(vec![spec(&worker, Restart::Permanent), spec(&intake, Restart::Permanent)], policy(5)).await;

    let began = Instant::now();
    ractor::call!(tree.supervisor, |reply| SupervisorMsg::Shutdown(Some(reply))).expect("shutdown acknowledged");
    tree.join.await.unwrap();
    assert_eq!(*stopped.lock().unwrap(), vec!["intake", "worker"], "intake stops first, workers drain last");
    assert!(began.elapsed() >= Duration::from_millis(300), "the worker's in-flight work was waited for");
    assert_eq!(tree.outcome.get(), Some(&Outcome::Shutdown));
    assert_eq!(tree.outcome.get().unwrap().exit_code(), 0);
    assert!(!tree.health.tree_started());
}

#[tokio::test]
async fn shutdown_kills_a_child_that_outlives_the_grace_period() {
    let slow = Probe { name: "slow", stop_delay: Duration::from_secs(30), ..Default::default() };
    let mut short = policy(5);
    short.shutdown_grace = Duration::from_millis(200);
    let tree = start(vec![spec(&slow, Restart::Permanent)], short).await;
    let began = Instant::now();
    ractor::call!(tree.supervisor, |reply| SupervisorMsg::Shutdown(Some(reply))).expect("shutdown acknowledged");
    tree.join.await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(5), "did not wait out the slow child: {:?}", began.elapsed());
    assert_eq!(tree.outcome.get(), Some(&Outcome::Shutdown));
}
