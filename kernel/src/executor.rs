//! A small async executor for one CPU.
//!
//! Tasks are boxed futures. A waker pushes its task's id onto the run queue;
//! the loop polls queued tasks, fires expired timers, and when nothing is
//! runnable arms the APIC one-shot timer for the earliest deadline and halts
//! until an interrupt. `sti; hlt` is one atomic step (the STI shadow), so an
//! interrupt that arrives after the check cannot be lost.
//!
//! Bounds: the run queue holds at most one entry per task (a task already
//! queued is not queued again); timers are one per pending `sleep`.

use crate::arch::x86_64::apic;
use crate::time;
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use spin::Mutex;
use x86_64::instructions::interrupts;

type TaskId = u64;
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Longest the CPU sleeps with no timer pending, so a lost wake-up (a bug)
/// costs latency rather than liveness.
const MAX_IDLE_NS: u64 = 1_000_000_000;

struct RunQueue {
    order: VecDeque<TaskId>,
    queued: BTreeSet<TaskId>,
}

static RUN_QUEUE: Mutex<RunQueue> = Mutex::new(RunQueue {
    order: VecDeque::new(),
    queued: BTreeSet::new(),
});
/// One pending sleep, ordered by deadline (then by creation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimerKey {
    /// Monotonic ns at which the sleep completes.
    deadline_ns: u64,
    /// Unique per sleep (`NEXT_TIMER`), so equal deadlines do not collide.
    id: u64,
}

/// Pending sleeps, earliest deadline first.
static TIMERS: Mutex<BTreeMap<TimerKey, Waker>> = Mutex::new(BTreeMap::new());
static NEW_TASKS: Mutex<Vec<(TaskId, Task)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn enqueue(id: TaskId) {
    interrupts::without_interrupts(|| {
        let mut queue = RUN_QUEUE.lock();
        if queue.queued.insert(id) {
            queue.order.push_back(id);
        }
    });
}

fn dequeue() -> Option<TaskId> {
    interrupts::without_interrupts(|| {
        let mut queue = RUN_QUEUE.lock();
        let id = queue.order.pop_front()?;
        queue.queued.remove(&id);
        Some(id)
    })
}

struct TaskWaker(TaskId);

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        enqueue(self.0);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        enqueue(self.0);
    }
}

/// Adds a task; it first runs on the executor's next turn.
pub fn spawn(future: impl Future<Output = ()> + Send + 'static) {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    interrupts::without_interrupts(|| NEW_TASKS.lock().push((id, Box::pin(future))));
    enqueue(id);
}

/// Runs tasks forever.
pub fn run() -> ! {
    let mut tasks = BTreeMap::new();
    loop {
        turn(&mut tasks);
        idle();
    }
}

/// Runs tasks until every task has finished (self-tests use this).
pub fn run_to_completion() {
    let mut tasks = BTreeMap::new();
    loop {
        turn(&mut tasks);
        if tasks.is_empty() && interrupts::without_interrupts(|| NEW_TASKS.lock().is_empty()) {
            return;
        }
        idle();
    }
}

/// One pass: fire due timers, then poll everything runnable.
fn turn(tasks: &mut BTreeMap<TaskId, (Task, Waker)>) {
    fire_timers(time::monotonic_ns());
    while let Some(id) = dequeue() {
        // A task spawned during this turn is queued before it is adopted.
        adopt_new_tasks(tasks);
        let Some((task, waker)) = tasks.get_mut(&id) else {
            continue; // woken after it finished
        };
        if task
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_ready()
        {
            tasks.remove(&id);
        }
    }
}

fn adopt_new_tasks(tasks: &mut BTreeMap<TaskId, (Task, Waker)>) {
    for (id, task) in interrupts::without_interrupts(|| core::mem::take(&mut *NEW_TASKS.lock())) {
        tasks.insert(id, (task, Waker::from(Arc::new(TaskWaker(id)))));
    }
}

/// Halts until the next interrupt, unless something became runnable.
fn idle() {
    interrupts::disable();
    let runnable = !RUN_QUEUE.lock().order.is_empty() || !NEW_TASKS.lock().is_empty();
    if runnable {
        interrupts::enable();
        return;
    }
    let now = time::monotonic_ns();
    let next = TIMERS.lock().keys().next().map(|key| key.deadline_ns);
    let wait = match next {
        Some(deadline) if deadline <= now => {
            interrupts::enable();
            return;
        }
        Some(deadline) => (deadline - now).min(MAX_IDLE_NS),
        None => MAX_IDLE_NS,
    };
    apic::arm_oneshot(wait);
    interrupts::enable_and_hlt();
}

fn fire_timers(now: u64) {
    let due: Vec<Waker> = interrupts::without_interrupts(|| {
        let mut timers = TIMERS.lock();
        let later = timers.split_off(&TimerKey {
            deadline_ns: now + 1,
            id: 0,
        });
        core::mem::replace(&mut *timers, later)
            .into_values()
            .collect()
    });
    for waker in due {
        waker.wake();
    }
}

static NEXT_TIMER: AtomicU64 = AtomicU64::new(0);

/// Completes once `duration` has passed.
pub fn sleep(duration: Duration) -> Sleep {
    Sleep {
        deadline: time::monotonic_ns().saturating_add(duration.as_nanos() as u64),
        key: None,
    }
}

pub struct Sleep {
    deadline: u64,
    key: Option<TimerKey>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if time::monotonic_ns() >= self.deadline {
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let key = *self.key.get_or_insert_with(|| TimerKey {
            deadline_ns: deadline,
            id: NEXT_TIMER.fetch_add(1, Ordering::Relaxed),
        });
        interrupts::without_interrupts(|| TIMERS.lock().insert(key, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            interrupts::without_interrupts(|| TIMERS.lock().remove(&key));
        }
    }
}
