//! Calling lvmdbusd: the `tmo` + Job pattern, and D-Bus errors mapped to the crate's errors.

use crate::classify::{classify, Target};
use crate::error::{CommandFailure, DeniedBy, Error, Result};
use std::time::{Duration, Instant};
use zbus::blocking::Connection;
use zbus::zvariant::{DynamicType, OwnedObjectPath, OwnedValue};

/// The bus name of lvmdbusd.
pub(crate) const SERVICE: &str = "com.redhat.lvmdbus1";
/// The manager object.
pub(crate) const MANAGER: &str = "/com/redhat/lvmdbus1/Manager";
const JOB_IFACE: &str = "com.redhat.lvmdbus1.Job";

/// How long a job may run before the client gives up on it.
const JOB_DEADLINE: Duration = Duration::from_secs(600);

/// The error the bus itself returns when its policy forbids a call (the daemon never sees it).
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";

/// Maps a zbus error of `operation` (a call of `method`) to the crate's error.
pub(crate) fn map_error(operation: &str, method: &str, target: &Target, e: zbus::Error) -> Error {
    match e {
        zbus::Error::MethodError(name, message, _) if name.as_str() == ACCESS_DENIED => {
            Error::PermissionDenied {
                operation: operation.to_owned(),
                by: DeniedBy::BusPolicy,
                detail: format!("{name}: {}", message.unwrap_or_default()),
            }
        }
        zbus::Error::MethodError(name, message, _) => {
            let message = message.unwrap_or_default();
            // lvmdbusd reports lvm2 failures as "Exit code N, stderr = MESSAGES".
            let (exit_code, stderr) = match message.strip_prefix("Exit code ") {
                Some(rest) => {
                    let (code, err) = rest.split_once(", stderr = ").unwrap_or((rest, ""));
                    (code.trim().parse().ok(), err.to_owned())
                }
                None => (None, message.clone()),
            };
            let lines: Vec<String> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect();
            let failure = CommandFailure {
                command: format!("D-Bus {method} ({name})"),
                exit_code,
                stderr,
            };
            match classify(operation, target, &lines, failure) {
                Error::Command { failure, .. } => Error::Dbus {
                    operation: operation.to_owned(),
                    detail: format!("{}: {}", failure.command, message),
                },
                typed => typed,
            }
        }
        other => Error::Dbus {
            operation: operation.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// Calls `iface.method(body)` on `path` and deserializes the reply.
pub(crate) fn call<B, R>(
    conn: &Connection,
    operation: &str,
    target: &Target,
    path: &str,
    iface: &str,
    method: &str,
    body: &B,
) -> Result<R>
where
    B: serde::Serialize + DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    let reply = conn
        .call_method(Some(SERVICE), path, Some(iface), method, body)
        .map_err(|e| map_error(operation, method, target, e))?;
    reply.body().deserialize::<R>().map_err(|e| Error::Parse {
        operation: operation.to_owned(),
        detail: format!("reply of {iface}.{method}: {e}"),
    })
}

/// Reads one property.
pub(crate) fn property(
    conn: &Connection,
    operation: &str,
    path: &str,
    iface: &str,
    name: &str,
) -> Result<OwnedValue> {
    call(
        conn,
        operation,
        &Target::all(),
        path,
        "org.freedesktop.DBus.Properties",
        "Get",
        &(iface, name),
    )
}

/// Waits for a Job (if any), reads its outcome, and removes it. `job` is `/` when the call
/// finished within its `tmo`. Returns the created object, if the call creates one.
pub(crate) fn finish(
    conn: &Connection,
    operation: &str,
    method: &str,
    target: &Target,
    object: OwnedObjectPath,
    job: OwnedObjectPath,
) -> Result<Option<String>> {
    if job.as_str() == "/" {
        return Ok(Some(object.to_string()).filter(|o| o != "/"));
    }
    let deadline = Instant::now() + JOB_DEADLINE;
    let outcome = loop {
        // Job.Wait blocks in the daemon for up to the given seconds.
        let done: bool = call(
            conn,
            operation,
            target,
            job.as_str(),
            JOB_IFACE,
            "Wait",
            &(1i32,),
        )?;
        if done {
            break Ok(());
        }
        if Instant::now() > deadline {
            break Err(Error::Dbus {
                operation: operation.to_owned(),
                detail: format!(
                    "job {} of {method} did not finish in {JOB_DEADLINE:?}",
                    job.as_str()
                ),
            });
        }
    };
    let result = outcome.and_then(|()| {
        let error = property(conn, operation, job.as_str(), JOB_IFACE, "GetError")?;
        let (code, message): (i32, String) = error.try_into().map_err(|e| Error::Parse {
            operation: operation.to_owned(),
            detail: format!("Job.GetError: {e}"),
        })?;
        if code != 0 {
            let lines: Vec<String> = message.lines().map(|l| l.trim().to_owned()).collect();
            let failure = CommandFailure {
                command: format!("D-Bus {method} (job {})", job.as_str()),
                exit_code: Some(code),
                stderr: message.clone(),
            };
            return Err(classify(operation, target, &lines, failure));
        }
        let result = property(conn, operation, job.as_str(), JOB_IFACE, "Result")?;
        let result: OwnedObjectPath = result.try_into().map_err(|e| Error::Parse {
            operation: operation.to_owned(),
            detail: format!("Job.Result: {e}"),
        })?;
        Ok(Some(result.to_string()).filter(|o| o != "/"))
    });
    // Always remove the job, whatever happened.
    let removed: Result<()> = call(
        conn,
        operation,
        target,
        job.as_str(),
        JOB_IFACE,
        "Remove",
        &(),
    );
    let value = result?;
    removed?;
    Ok(value)
}
