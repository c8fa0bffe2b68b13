//! `rediss://`: a queue over TLS to a private `redis-server` whose certificate a test CA
//! signed (made with the `openssl` command), and a refusal when the CA is not trusted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use workmill_core::{NewTask, Queue, QueueError, TaskStatus, WorkerId};
use workmill_queue::redis::RedisConfig;

use crate::redis_server::{PrivateRedis, redis_server_available};

/// Runs `openssl` with `args` in `dir`, or returns why it could not.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("openssl could not be run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("openssl {} failed with {status}", args.join(" ")))
    }
}

/// A test CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
fn make_certificates(dir: &Path) -> Result<(), String> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=workmill test CA",
            ],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    )?;
    Ok(())
}

#[test]
fn a_queue_works_over_tls_and_refuses_an_untrusted_server() {
    let test = "a_queue_works_over_tls_and_refuses_an_untrusted_server";
    if !cfg!(feature = "redis-tls") {
        println!("skipped {test}: built without the redis-tls feature");
        return;
    }
    if !redis_server_available(test) {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    if let Err(why) = make_certificates(certs.path()) {
        println!("skipped {test}: could not make test certificates ({why}); install openssl");
        return;
    }
    let server = PrivateRedis::start_tls(certs.path(), &["--requirepass", "tls-pw"]);
    let url = format!("rediss://:tls-pw@127.0.0.1:{}/0?prefix=tls", server.port());
    let ca = std::fs::read(certs.path().join("ca.crt")).unwrap();

    let config = RedisConfig::new().connect_timeout(Duration::from_secs(5));
    #[cfg(feature = "redis-tls")]
    let trusting = config.clone().tls_root_certificate(ca);
    #[cfg(not(feature = "redis-tls"))]
    let trusting = {
        let _ = ca;
        config.clone()
    };
    let queue = trusting
        .open(&url)
        .expect("open over TLS with the test CA trusted");
    let id = queue
        .enqueue(NewTask::new("tls.echo", b"secret".to_vec()))
        .unwrap();
    let worker = WorkerId::new("tls-worker").unwrap();
    let got = queue.reserve(&worker, 1, Duration::from_secs(60)).unwrap();
    assert_eq!(got[0].payload, b"secret");
    queue.complete(&got[0].lease, b"sealed".to_vec()).unwrap();
    let record = queue.status(&id).unwrap();
    assert_eq!(
        (record.status, record.result.as_deref()),
        (TaskStatus::Completed, Some(&b"sealed"[..]))
    );

    // The system trust store does not know the test CA: the handshake must fail.
    let err = config.open(&url).unwrap_err();
    assert!(matches!(err, QueueError::Backend { .. }), "{err:?}");
    // Plain text to a TLS port is no substitute either.
    let plain = format!("redis://:tls-pw@127.0.0.1:{}/0", server.port());
    let err = RedisConfig::new()
        .connect_timeout(Duration::from_secs(2))
        .open(&plain)
        .unwrap_err();
    assert!(matches!(err, QueueError::Backend { .. }), "{err:?}");
}
