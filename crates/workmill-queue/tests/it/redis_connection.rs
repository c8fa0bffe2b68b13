//! Redis connections: URLs refused with a reason, passwords, ACL users and databases honoured,
//! timeouts that end a call instead of hanging it, and a killed connection replaced by the next call.

use std::net::TcpListener;
use std::time::Duration;

use workmill_core::{NewTask, Queue, QueueError, TaskStatus, WorkerId};
use workmill_queue::redis::{RedisConfig, RedisQueue};

use crate::redis_harness::{redis_url, unique_prefix};
use crate::redis_server::{PrivateRedis, redis_server_available};

fn invalid_reason(result: Result<RedisQueue, QueueError>) -> String {
    match result {
        Err(QueueError::InvalidUrl { reason, .. }) => reason,
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn bad_urls_and_prefixes_are_refused_before_connecting() {
    // None of these reaches a server, so the test needs none.
    for (url, expected) in [
        ("postgres://127.0.0.1/test", "not \"redis\" or \"rediss\""),
        ("redis://127.0.0.1:99999", "port"),
        ("redis://127.0.0.1/db", "database number"),
        ("redis://127.0.0.1?pool=4", "unknown parameter \"pool\""),
    ] {
        let reason = invalid_reason(RedisQueue::open(url));
        assert!(reason.contains(expected), "{url}: {reason}");
    }
    let nobody = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls = RedisQueue::open(&format!("rediss://:pw@127.0.0.1:{nobody}"));
    if cfg!(feature = "redis-tls") {
        // Accepted as a URL; only the connection fails (no server listens there).
        assert!(matches!(tls, Err(QueueError::Backend { .. })), "{tls:?}");
    } else {
        let reason = invalid_reason(tls);
        assert!(reason.contains("redis-tls"), "{reason}");
    }
    let reason = invalid_reason(
        RedisConfig::new()
            .prefix("two words")
            .open("redis://127.0.0.1"),
    );
    assert!(reason.contains("prefix"), "{reason}");
}

#[test]
fn an_unreachable_or_silent_server_is_a_transient_backend_error() {
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let err = RedisQueue::open(&format!("redis://127.0.0.1:{closed_port}")).unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::Backend {
                backend: "redis",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());

    // A listener that accepts connections and never answers: the connect timeout ends the handshake.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let err = RedisConfig::new()
        .connect_timeout(Duration::from_millis(200))
        .open(&format!("redis://127.0.0.1:{port}"))
        .unwrap_err();
    assert!(matches!(err, QueueError::Backend { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[test]
fn password_acl_user_and_database_are_honoured() {
    if !redis_server_available("password_acl_user_and_database_are_honoured") {
        return;
    }
    let server = PrivateRedis::start(&["--requirepass", "s3cret-pw"]);
    let queue = RedisQueue::open(&format!("{}/3?prefix=pw", server.url(":s3cret-pw@")))
        .expect("the right password opens the queue");
    let id = queue
        .enqueue(NewTask::new("auth.check", vec![1]))
        .expect("enqueue");

    let client = redis::Client::open(format!("{}/3", server.url(":s3cret-pw@"))).unwrap();
    let mut raw = client.get_connection().unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("pw:task:{id}"))
        .query(&mut raw)
        .unwrap();
    assert!(
        exists,
        "the task lives in database 3 under the URL's prefix"
    );
    let in_db0: bool = redis::cmd("SELECT")
        .arg(0)
        .query::<()>(&mut raw)
        .and_then(|()| {
            redis::cmd("EXISTS")
                .arg(format!("pw:task:{id}"))
                .query(&mut raw)
        })
        .unwrap();
    assert!(!in_db0);

    for wrong in ["", ":wrong@"] {
        let err = RedisQueue::open(&server.url(wrong)).unwrap_err();
        assert!(
            matches!(err, QueueError::Backend { .. }),
            "{wrong}: {err:?}"
        );
        assert!(
            !err.to_string().contains("wrong@"),
            "the password is not echoed: {err}"
        );
    }

    redis::cmd("ACL")
        .arg(&["SETUSER", "worker", "on", ">worker-pw", "~*", "&*", "+@all"])
        .query::<()>(&mut raw)
        .unwrap();
    let as_user = RedisQueue::open(&format!("{}/3?prefix=pw", server.url("worker:worker-pw@")))
        .expect("an ACL user logs in");
    assert_eq!(
        as_user.status(&id).expect("status").status,
        TaskStatus::Pending
    );
}

/// The ids of the server's connections named after the queue.
fn connections_of(raw: &mut redis::Connection, queue: &RedisQueue) -> Vec<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(raw).unwrap();
    let name = format!("name=workmill:{}", queue.prefix());
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == name))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_killed_connection_is_replaced_by_the_next_call() {
    let Some(url) = redis_url("a_killed_connection_is_replaced_by_the_next_call") else {
        return;
    };
    let queue = RedisConfig::new()
        .prefix(unique_prefix("client-kill"))
        .open(&url)
        .unwrap();
    let worker = WorkerId::new("survivor").unwrap();
    queue.enqueue(NewTask::new("kill.me", vec![1])).unwrap();
    queue.enqueue(NewTask::new("kill.me", vec![2])).unwrap();
    let first = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();

    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let ids = connections_of(&mut raw, &queue);
    assert!(!ids.is_empty(), "the queue keeps a named connection");
    for id in &ids {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query::<()>(&mut raw)
            .unwrap();
    }

    // The pooled connection is dead: the next call fails, transiently, and changes nothing...
    let err = queue.stats().unwrap_err();
    assert!(
        matches!(
            err,
            QueueError::Backend {
                backend: "redis",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_transient());
    // ...and the call after it reconnects by itself and finds everything as it was.
    queue
        .complete(&first[0].lease, b"done".to_vec())
        .expect("complete after reconnecting");
    let second = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
    queue.complete(&second[0].lease, Vec::new()).unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.pending, stats.running), (2, 0, 0));
    assert!(
        connections_of(&mut raw, &queue)
            .iter()
            .all(|id| !ids.contains(id)),
        "the killed connections were replaced, not revived"
    );
    queue.destroy().unwrap();
}

#[test]
fn a_paused_server_times_out_the_call_and_the_queue_recovers() {
    if !redis_server_available("a_paused_server_times_out_the_call_and_the_queue_recovers") {
        return;
    }
    let server = PrivateRedis::start(&[]);
    let queue = RedisConfig::new()
        .response_timeout(Duration::from_millis(100))
        .open(&server.url(""))
        .unwrap();
    queue.enqueue(NewTask::new("pause.me", vec![])).unwrap();
    let mut raw = redis::Client::open(server.url(""))
        .unwrap()
        .get_connection()
        .unwrap();
    // Every other client's commands wait for two seconds; ours must give up long before.
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(2_000)
        .arg("ALL")
        .query::<()>(&mut raw)
        .unwrap();
    let err = queue.stats().unwrap_err();
    assert!(matches!(err, QueueError::Backend { .. }), "{err:?}");
    assert!(err.is_transient());
    redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query::<()>(&mut raw)
        .unwrap();
    let stats = queue.stats().expect("the next call reconnects");
    assert_eq!((stats.submitted, stats.pending), (1, 1));
}
