//! Wake-ups through LISTEN/NOTIFY: one listener thread per queue value rings the `Doorbell` when a
//! notification arrives; `await_work` and `wait` sleep on it, with a polling fallback bounded by
//! the next due time and lease expiry the store reports.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use postgres::GenericClient;
use postgres::fallible_iterator::FallibleIterator;
use workmill_core::{QueueError, TaskId, TaskRecord, Timestamp};

use super::pool::{Connector, Pool, Session, Settings, Statements};
use super::store::{store_error, timestamp};
use crate::doorbell::{Bell, Doorbell};

const NOTIFY: &str = "SELECT pg_notify($1, '')";

/// Announces on `channel` when the caller's transaction commits (and never if it rolls back).
pub(crate) fn notify(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    channel: &str,
) -> Result<(), QueueError> {
    notify_or_error(client, statements, settings, channel)
        .map_err(store_error("send a notification"))
}

/// [`notify`], for callers that report the driver's error as it is (the job bookkeeping).
pub(crate) fn notify_or_error(
    client: &mut impl GenericClient,
    statements: &mut Statements,
    settings: &Settings,
    channel: &str,
) -> Result<(), postgres::Error> {
    let select = statements.get(client, settings, NOTIFY)?;
    client.execute(&select, &[&channel])?;
    Ok(())
}

/// When the next waiting task is due, and when the next lease lapses; each is one probe of a
/// partial index (`tasks_due`, `tasks_leased`).
const NEXT_EVENTS: &str = "
SELECT (SELECT min(run_at) FROM {s}.tasks WHERE status IN ('pending', 'retrying')),
       (SELECT min(lease_expires_at) FROM {s}.tasks WHERE status = 'running')";

/// How often the listener looks up from its connection to see whether its queue was dropped.
const TICK: Duration = Duration::from_millis(100);

/// The notification side of one queue value: its doorbell, and the listener that rings it.
pub(crate) struct Wakeup {
    doorbell: Arc<Doorbell>,
    listener: OnceLock<()>,
    connector: Connector,
    settings: Arc<Settings>,
    poll_interval: Duration,
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // The listener sees this within a tick, and closes its connection as it exits.
        self.doorbell.close();
    }
}

impl Wakeup {
    pub(crate) fn new(
        connector: Connector,
        settings: Arc<Settings>,
        poll_interval: Duration,
    ) -> Wakeup {
        Wakeup {
            doorbell: Arc::new(Doorbell::new()),
            listener: OnceLock::new(),
            connector,
            settings,
            poll_interval,
        }
    }

    /// Sleeps until work may be available: a notification, the next due time or lease expiry,
    /// the poll interval, or `timeout`, whichever comes first.
    pub(crate) fn await_work(&self, pool: &Pool, timeout: Duration) -> Result<(), QueueError> {
        const OP: &str = "look for the next due task";
        let seen = self.doorbell.rings(Bell::Work);
        let (due, lapse) = pool.with(|session| {
            let Session {
                client,
                statements,
                settings,
            } = session;
            let select = statements
                .get(client, settings, NEXT_EVENTS)
                .map_err(store_error(OP))?;
            let row = client.query_one(&select, &[]).map_err(store_error(OP))?;
            let due: Option<i64> = row.try_get(0).map_err(store_error(OP))?;
            let lapse: Option<i64> = row.try_get(1).map_err(store_error(OP))?;
            Ok((due.and_then(timestamp), lapse.and_then(timestamp)))
        })?;
        let now = Timestamp::now();
        let mut sleep = timeout.min(self.poll_interval);
        for at in [due, lapse].into_iter().flatten() {
            if at <= now {
                return Ok(());
            }
            sleep = sleep.min(at.saturating_duration_since(now));
        }
        if sleep.is_zero() {
            return Ok(());
        }
        self.start_listener();
        self.doorbell
            .wait_past(Bell::Work, seen, Some(Instant::now() + sleep));
        Ok(())
    }

    /// Blocks until task `id` is final, looking again at each completion notification (and at
    /// least every poll interval), or fails with `Timeout`.
    pub(crate) fn wait(
        &self,
        pool: &Pool,
        id: &TaskId,
        timeout: Duration,
    ) -> Result<TaskRecord, QueueError> {
        let start = Instant::now();
        loop {
            let seen = self.doorbell.rings(Bell::Done);
            let record = pool.with(|session| super::admin::status(session, id))?;
            if record.status.is_final() {
                return Ok(record);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(QueueError::Timeout {
                    id: id.clone(),
                    waited,
                    status: record.status,
                });
            }
            self.start_listener();
            let pause = (timeout - waited).min(self.poll_interval);
            self.doorbell
                .wait_past(Bell::Done, seen, Some(Instant::now() + pause));
        }
    }

    /// Starts the listener thread the first time a caller is about to sleep.
    fn start_listener(&self) {
        self.listener.get_or_init(|| {
            let doorbell = Arc::clone(&self.doorbell);
            let connector = self.connector.clone();
            let settings = Arc::clone(&self.settings);
            let started = std::thread::Builder::new()
                .name("workmill-pg-listen".to_owned())
                .spawn(move || listen(&doorbell, &connector, &settings));
            if let Err(err) = started {
                // Without a listener, sleepers still wake at the poll interval.
                tracing::warn!(error = %err, "could not start the PostgreSQL notification listener");
            }
        });
    }
}

/// The listener thread: keeps a connection that LISTENs on the queue's channels and rings the
/// doorbell for each notification, reconnecting (with a growing pause) whenever it is lost,
/// until the doorbell closes.
fn listen(doorbell: &Doorbell, connector: &Connector, settings: &Settings) {
    let listen = format!(
        "LISTEN \"{}\"; LISTEN \"{}\"",
        settings.work_channel, settings.done_channel
    );
    let mut pause = Duration::from_millis(10);
    while !doorbell.is_closed() {
        let connected = connector.connect().and_then(|mut client| {
            client
                .batch_execute(&listen)
                .map_err(store_error("listen for notifications"))?;
            Ok(client)
        });
        let mut client = match connected {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(error = %err, ?pause, "the notification listener could not connect; retrying");
                doorbell.sleep_unless_closed(Instant::now() + pause);
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        pause = Duration::from_millis(10);
        // Whatever was announced while nobody listened is lost: everyone should look again.
        doorbell.ring_all();
        while !doorbell.is_closed() {
            let started = Instant::now();
            let next = client.notifications().timeout_iter(TICK).next();
            match next {
                Ok(Some(notification)) => {
                    if notification.channel() == settings.done_channel {
                        doorbell.ring(Bell::Done);
                    } else {
                        doorbell.ring(Bell::Work);
                    }
                }
                // `None` means a quiet tick, or a connection that ended: a quiet tick takes
                // the whole tick, so an early `None` is checked with a round trip.
                Ok(None) => {
                    let early = started.elapsed() < TICK / 2;
                    if client.is_closed() || (early && client.is_valid(TICK * 10).is_err()) {
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the notification listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}
